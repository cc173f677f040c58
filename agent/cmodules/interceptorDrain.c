/* True once every detached hook's trampoline is out of use (interceptorDrain.ts). */
#include <gum/guminterceptor.h>

int
interceptor_drained (void)
{
  GumInterceptor * interceptor = gum_interceptor_obtain ();
  gboolean done = gum_interceptor_flush (interceptor);
  g_object_unref (interceptor);
  return done;
}
