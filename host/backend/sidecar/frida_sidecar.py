"""Thin bridge from Node to the Frida Python bindings.

Protocol: newline-delimited JSON. Requests arrive on stdin as
{"id": N, "op": "...", ...}; replies go to stdout as {"id": N, "ok": true, "result": ...}
or {"id": N, "ok": false, "error": "...", "code": "..."}; unsolicited events as
{"event": "...", ...}. Binary payloads travel base64-encoded in a "data" field.

Nothing but protocol lines may reach the protocol stream, so at start-up the stream is
moved to a private descriptor and fd 1 is pointed at the stdout Node handed us as fd 3
(the user's terminal). Children spawned with stdio "inherit" then write where the user
expects, and stray prints or Frida's own logging cannot corrupt the protocol.
The same is done for stdin (fd 4) and stderr (fd 5), so a spawned child never reads our
requests, while our own diagnostics stay on the stderr pipe Node reads.

Every request runs on a worker thread: Frida's synchronous calls (RPC in particular)
block, and the reader must keep draining stdin meanwhile.
"""

import base64
import json
import os
import signal
import sys
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor


def _take_protocol_streams():
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    diagnostics = os.dup(2)
    # fds 3/4/5 are the user's stdout/stdin/stderr as Node handed them to us.
    for user_fd, std_fd in ((3, 1), (4, 0), (5, 2)):
        try:
            os.dup2(user_fd, std_fd)
            os.close(user_fd)
        except OSError:
            # Not given (run by hand, or Node had no such stream): never leave the
            # protocol pipe where a child could inherit it.
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, std_fd)
            os.close(null)
    # Our own diagnostics (tracebacks) go to the pipe Node reads for -v and crash reports.
    sys.stderr = os.fdopen(diagnostics, "w", buffering=1)
    return proto_in, proto_out


def _die_with_parent():
    # If Node is SIGKILLed we must not linger: our stdin EOF also catches it, this is the
    # belt to those braces (PR_SET_PDEATHSIG = 1).
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    except Exception:
        pass


PROTO_IN, PROTO_OUT = _take_protocol_streams()
_die_with_parent()
# Ctrl-C reaches the whole process group; the CLI decides what it means and tells us.
# A handler (not SIG_IGN) so that children we spawn get the default disposition back.
signal.signal(signal.SIGINT, lambda *_: None)

import frida  # noqa: E402  (after the fd shuffle so nothing it prints reaches the protocol)

_write_lock = threading.Lock()


def emit(obj):
    line = (json.dumps(obj, separators=(",", ":")) + "\n").encode()
    with _write_lock:
        try:
            PROTO_OUT.write(line)
        except BrokenPipeError:
            os._exit(0)


def b64(data):
    return None if data is None else base64.b64encode(data).decode()


class UserError(Exception):
    """An error the host shows as one line; `code` lets it choose an exit status."""

    def __init__(self, message, code="frida"):
        super().__init__(message)
        self.code = code


class Sidecar:
    def __init__(self):
        self.device = frida.get_local_device()
        self.sessions = {}
        self.scripts = {}
        self.next_id = 1
        self.lock = threading.Lock()
        self.device.on("output", self._on_output)
        self.device.on("lost", lambda: emit({"event": "device-lost"}))

    def _new_id(self):
        with self.lock:
            i = self.next_id
            self.next_id += 1
            return i

    def _on_output(self, pid, fd, data):
        emit({"event": "output", "pid": pid, "fd": fd, "data": b64(data)})

    # --- processes -------------------------------------------------------------------
    def op_version(self, req):
        return {"frida": frida.__version__, "python": sys.version.split()[0]}

    def op_enumerate_processes(self, req):
        return [{"pid": p.pid, "name": p.name} for p in self.device.enumerate_processes()]

    def op_get_process(self, req):
        pid = req["pid"]
        for p in self.device.enumerate_processes():
            if p.pid == pid:
                return {"pid": p.pid, "name": p.name}
        return None

    def op_spawn(self, req):
        kwargs = {"stdio": req.get("stdio", "inherit")}
        if req.get("env"):
            kwargs["env"] = req["env"]
        if req.get("cwd"):
            kwargs["cwd"] = req["cwd"]
        return self.device.spawn(req["argv"], **kwargs)

    def op_resume(self, req):
        self.device.resume(req["pid"])

    def op_kill(self, req):
        self.device.kill(req["pid"])

    # --- sessions and scripts ---------------------------------------------------------
    def op_attach(self, req):
        session = self.device.attach(req["pid"])
        sid = self._new_id()
        self.sessions[sid] = session

        def on_detached(reason, crash):
            emit(
                {
                    "event": "detached",
                    "session": sid,
                    "reason": reason,
                    "crash": None if crash is None else {"summary": crash.summary, "report": crash.report},
                }
            )

        session.on("detached", on_detached)
        return {"session": sid, "pid": req["pid"]}

    def op_detach(self, req):
        session = self.sessions.pop(req["session"], None)
        if session is not None:
            session.detach()

    def op_create_script(self, req):
        session = self.sessions[req["session"]]
        script = session.create_script(req["source"], name=req.get("name"), runtime=req.get("runtime", "v8"))
        sid = self._new_id()
        self.scripts[sid] = script

        def on_message(message, data):
            emit({"event": "message", "script": sid, "message": message, "data": b64(data)})

        def on_log(level, text):
            emit({"event": "log", "script": sid, "level": level, "text": text})

        script.on("message", on_message)
        script.on("destroyed", lambda: emit({"event": "destroyed", "script": sid}))
        script.set_log_handler(on_log)
        return {"script": sid}

    def op_load_script(self, req):
        self.scripts[req["script"]].load()

    def op_unload_script(self, req):
        script = self.scripts.pop(req["script"], None)
        if script is not None:
            script.unload()

    def op_eternalize_script(self, req):
        script = self.scripts.pop(req["script"], None)
        if script is not None:
            script.eternalize()

    def op_post(self, req):
        data = req.get("data")
        self.scripts[req["script"]].post(req["message"], None if data is None else base64.b64decode(data))

    def op_rpc(self, req):
        script = self.scripts[req["script"]]
        data = req.get("data")
        try:
            result = script._rpc_request(
                ["call", req["method"], req.get("args", [])], None if data is None else base64.b64decode(data)
            )
        except frida.core.RPCException as e:
            raise UserError(str(e), "rpc")
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], (bytes, bytearray)):
            return {"value": result[0], "data": b64(bytes(result[1]))}
        return {"value": result}

    def op_shutdown(self, req):
        self.cleanup()
        return None

    def cleanup(self):
        for session in list(self.sessions.values()):
            try:
                session.detach()
            except Exception:
                pass
        self.sessions.clear()

    # --- dispatch ---------------------------------------------------------------------
    def handle(self, req):
        rid = req.get("id")
        op = getattr(self, "op_" + str(req.get("op")), None)
        try:
            if op is None:
                raise UserError("unknown sidecar operation %r" % req.get("op"), "protocol")
            emit({"id": rid, "ok": True, "result": op(req)})
        except UserError as e:
            emit({"id": rid, "ok": False, "error": str(e), "code": e.code})
        except frida.ProcessNotFoundError as e:
            emit({"id": rid, "ok": False, "error": str(e), "code": "process-not-found"})
        except frida.PermissionDeniedError as e:
            emit({"id": rid, "ok": False, "error": str(e), "code": "permission-denied"})
        except frida.ExecutableNotFoundError as e:
            emit({"id": rid, "ok": False, "error": str(e), "code": "executable-not-found"})
        except (frida.InvalidOperationError, frida.InvalidArgumentError, frida.NotSupportedError) as e:
            emit({"id": rid, "ok": False, "error": str(e), "code": "frida"})
        except KeyError as e:
            emit({"id": rid, "ok": False, "error": "unknown handle %s" % e, "code": "protocol"})
        except Exception as e:  # a bug of ours: keep the trace on stderr for -v, one line for the user
            traceback.print_exc(file=sys.stderr)
            emit({"id": rid, "ok": False, "error": "%s: %s" % (type(e).__name__, e), "code": "internal"})


def main():
    sidecar = Sidecar()
    emit({"event": "ready", "frida": frida.__version__})
    pool = ThreadPoolExecutor(max_workers=8)
    for raw in PROTO_IN:
        raw = raw.strip()
        if not raw:
            continue
        try:
            req = json.loads(raw)
        except ValueError:
            emit({"event": "protocol-error", "line": raw[:200].decode(errors="replace")})
            continue
        pool.submit(sidecar.handle, req)
    # stdin closed: Node is gone or done. Detach so hooks leave the targets with us.
    sidecar.cleanup()
    os._exit(0)


if __name__ == "__main__":
    main()
