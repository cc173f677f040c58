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

Sharing a target. Two Frida runtimes in one process corrupt each other (each patches the
same functions with its own Interceptor), but one runtime serves any number of sessions and
scripts. So the first bpftime-ts on a target asks its sidecar to share it (attach with
"share"): the sidecar then also listens on a Unix socket, and later bpftime-ts CLIs speak
the same protocol over it, getting sessions on the same Frida runtime. Each connection owns
its sessions and scripts and gets their events; when it goes, its sessions are detached.
The sidecar outlives its own CLI while other connections remain, and removes the socket and
the claim file (host/session/targetLock.ts) when the last one leaves.
"""

import base64
import json
import os
import signal
import socket
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

class Client:
    """One protocol stream: our own CLI's pipes, or a connection from another CLI."""

    def __init__(self, out, name):
        self.out = out
        self.name = name
        self.lock = threading.Lock()
        self.gone = False

    def emit(self, obj):
        line = (json.dumps(obj, separators=(",", ":")) + "\n").encode()
        with self.lock:
            if self.gone:
                return
            try:
                self.out.write(line)
                self.out.flush()
            except (BrokenPipeError, OSError, ValueError):
                self.gone = True


MAIN = Client(PROTO_OUT, "main")


def emit(obj):
    MAIN.emit(obj)


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
        # Which client owns each session and script: it gets their events, and loses them
        # (detached) when it goes.
        self.owners = {}
        self.next_id = 1
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=8)
        self.guests = set()
        self.share_path = None
        self.claim_path = None
        self.main_gone = threading.Event()
        self.all_gone = threading.Event()
        self.device.on("output", self._on_output)
        self.device.on("lost", lambda: self._broadcast({"event": "device-lost"}))

    def _broadcast(self, obj):
        MAIN.emit(obj)
        for c in list(self.guests):
            c.emit(obj)

    def _new_id(self):
        with self.lock:
            i = self.next_id
            self.next_id += 1
            return i

    def _on_output(self, pid, fd, data):
        emit({"event": "output", "pid": pid, "fd": fd, "data": b64(data)})

    # --- processes -------------------------------------------------------------------
    def op_version(self, req, client):
        return {"frida": frida.__version__, "python": sys.version.split()[0]}

    def op_enumerate_processes(self, req, client):
        return [{"pid": p.pid, "name": p.name} for p in self.device.enumerate_processes()]

    def op_get_process(self, req, client):
        pid = req["pid"]
        for p in self.device.enumerate_processes():
            if p.pid == pid:
                return {"pid": p.pid, "name": p.name}
        return None

    def op_spawn(self, req, client):
        kwargs = {"stdio": req.get("stdio", "inherit")}
        if req.get("env"):
            kwargs["env"] = req["env"]
        if req.get("cwd"):
            kwargs["cwd"] = req["cwd"]
        return self.device.spawn(req["argv"], **kwargs)

    def op_resume(self, req, client):
        self.device.resume(req["pid"])

    def op_kill(self, req, client):
        self.device.kill(req["pid"])

    # --- sessions and scripts ---------------------------------------------------------
    def op_attach(self, req, client):
        session = self.device.attach(req["pid"])
        sid = self._new_id()
        self.sessions[sid] = session
        self.owners[sid] = client
        if req.get("share"):
            self.share(req["share"]["socket"], req["share"].get("claim"))

        def on_detached(reason, crash):
            client.emit(
                {
                    "event": "detached",
                    "session": sid,
                    "reason": reason,
                    "crash": None if crash is None else {"summary": crash.summary, "report": crash.report},
                }
            )

        session.on("detached", on_detached)
        return {"session": sid, "pid": req["pid"]}

    def op_detach(self, req, client):
        session = self.sessions.pop(req["session"], None)
        self.owners.pop(req["session"], None)
        if session is not None:
            session.detach()

    def op_create_script(self, req, client):
        session = self.sessions[req["session"]]
        script = session.create_script(req["source"], name=req.get("name"), runtime=req.get("runtime", "v8"))
        sid = self._new_id()
        self.scripts[sid] = script
        self.owners[sid] = client

        def on_message(message, data):
            client.emit({"event": "message", "script": sid, "message": message, "data": b64(data)})

        def on_log(level, text):
            client.emit({"event": "log", "script": sid, "level": level, "text": text})

        script.on("message", on_message)
        script.on("destroyed", lambda: client.emit({"event": "destroyed", "script": sid}))
        script.set_log_handler(on_log)
        return {"script": sid}

    def op_load_script(self, req, client):
        self.scripts[req["script"]].load()

    def op_unload_script(self, req, client):
        script = self.scripts.pop(req["script"], None)
        if script is not None:
            script.unload()

    def op_eternalize_script(self, req, client):
        script = self.scripts.pop(req["script"], None)
        if script is not None:
            script.eternalize()

    def op_post(self, req, client):
        data = req.get("data")
        self.scripts[req["script"]].post(req["message"], None if data is None else base64.b64decode(data))

    def op_rpc(self, req, client):
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

    def op_shutdown(self, req, client):
        self.drop(client)
        return None

    # --- sharing ----------------------------------------------------------------------
    def share(self, path, claim):
        with self.lock:
            if self.share_path is not None:
                return
            self.share_path = path
            self.claim_path = claim
        try:
            os.unlink(path)  # a stale socket of a sidecar that was killed
        except FileNotFoundError:
            pass
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        os.chmod(path, 0o600)
        server.listen(8)
        self.server = server
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            client = Client(conn.makefile("wb", buffering=0), "guest")
            with self.lock:
                if self.all_gone.is_set() and not self.guests:
                    conn.close()  # finishing: the CLI retries and takes the target over
                    continue
                self.guests.add(client)
            client.emit({"event": "ready", "frida": frida.__version__})
            threading.Thread(target=self._serve, args=(conn, client), daemon=True).start()

    def _serve(self, conn, client):
        reader = conn.makefile("rb")
        try:
            for raw in reader:
                self.dispatch(raw, client)
        except OSError:
            pass
        self.drop(client)
        try:
            conn.close()
        except OSError:
            pass

    def drop(self, client):
        """The client's sessions leave the target; the last client to go ends the sidecar."""
        mine = [sid for sid, owner in list(self.owners.items()) if owner is client]
        # Scripts first, the way the CLI detaches (its agent's detachAll, then unload): a CLI
        # that was killed gets the same clean exit, VM library copy and all.
        for sid in mine:
            script = self.scripts.pop(sid, None)
            self.owners.pop(sid, None)
            if script is None:
                continue
            done = threading.Event()

            def graceful(script=script, done=done):
                try:
                    script._rpc_request(["call", "detachAll", []], None)
                    script.unload()
                except Exception:
                    pass
                done.set()

            threading.Thread(target=graceful, daemon=True).start()
            done.wait(5)
        for sid in mine:
            session = self.sessions.pop(sid, None)
            self.owners.pop(sid, None)
            if session is not None:
                try:
                    session.detach()
                except Exception:
                    pass
        if client is not MAIN:
            client.gone = True  # its connection is closing; our own CLI still wants replies (shutdown)
        if client is MAIN and not self.main_gone.is_set():
            # Our CLI's streams (its stdout may be a pipe someone reads to the end) must not
            # be held open by us while we go on serving the others.
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.close(null)
        with self.lock:
            self.guests.discard(client)
            if client is MAIN:
                self.main_gone.set()
            if self.main_gone.is_set() and not self.guests:
                self.all_gone.set()

    def finish(self):
        """
        Waits until no client is left, then stops sharing: the socket and the claim go
        before we do, under the lock that admits new clients, so nobody joins a sidecar
        that is about to exit (a CLI that finds the claim gone takes the target over).
        """
        while True:
            self.all_gone.wait()
            with self.lock:
                if self.guests:
                    continue
                if self.share_path is None:
                    return
                try:
                    self.server.close()
                    os.unlink(self.share_path)
                except OSError:
                    pass
                if self.claim_path:
                    try:
                        with open(self.claim_path) as f:
                            mine = f.read().split()[:1] == [str(os.getpid())]
                        if mine:
                            os.unlink(self.claim_path)
                    except OSError:
                        pass
                return

    # --- dispatch ---------------------------------------------------------------------
    def dispatch(self, raw, client):
        raw = raw.strip()
        if not raw:
            return
        try:
            req = json.loads(raw)
        except ValueError:
            client.emit({"event": "protocol-error", "line": raw[:200].decode(errors="replace")})
            return
        self.pool.submit(self.handle, req, client)

    def handle(self, req, client):
        rid = req.get("id")
        op = getattr(self, "op_" + str(req.get("op")), None)
        try:
            if op is None:
                raise UserError("unknown sidecar operation %r" % req.get("op"), "protocol")
            client.emit({"id": rid, "ok": True, "result": op(req, client)})
        except UserError as e:
            client.emit({"id": rid, "ok": False, "error": str(e), "code": e.code})
        except frida.ProcessNotFoundError as e:
            client.emit({"id": rid, "ok": False, "error": str(e), "code": "process-not-found"})
        except frida.PermissionDeniedError as e:
            client.emit({"id": rid, "ok": False, "error": str(e), "code": "permission-denied"})
        except frida.ExecutableNotFoundError as e:
            client.emit({"id": rid, "ok": False, "error": str(e), "code": "executable-not-found"})
        except (frida.InvalidOperationError, frida.InvalidArgumentError, frida.NotSupportedError) as e:
            client.emit({"id": rid, "ok": False, "error": str(e), "code": "frida"})
        except KeyError as e:
            client.emit({"id": rid, "ok": False, "error": "unknown handle %s" % e, "code": "protocol"})
        except Exception as e:  # a bug of ours: keep the trace on stderr for -v, one line for the user
            traceback.print_exc(file=sys.stderr)
            client.emit({"id": rid, "ok": False, "error": "%s: %s" % (type(e).__name__, e), "code": "internal"})


def main():
    sidecar = Sidecar()

    def on_term(*_):
        # SIGTERM (PR_SET_PDEATHSIG when our CLI dies): our stdin's EOF, which its death
        # brings too, ends the loop below; its sessions are then detached the way the CLI
        # would have (its agent's detachAll: hooks off, VM copy unloaded), not just dropped,
        # and other CLIs sharing the target keep theirs.
        pass

    signal.signal(signal.SIGTERM, on_term)
    emit({"event": "ready", "frida": frida.__version__})
    for raw in PROTO_IN:
        sidecar.dispatch(raw, MAIN)
    # stdin closed: our CLI is gone or done. Its sessions leave the target; if other CLIs
    # share it, serve them until the last one goes.
    sidecar.drop(MAIN)
    sidecar.finish()
    # Frida's injector may still be finishing with a target we detached from (a remote call
    # on one of its threads, under ptrace, returning to Frida's dummy address 0x320). Exiting
    # in the middle of it let that thread run on to 0x320 and the target died (cored: the
    # main thread of a victim that only sat in pthread_join, about 1 detach in 200 under
    # load). Closing the device manager lets Frida finish; bounded, so a wedged Frida
    # cannot keep us up.
    closer = threading.Thread(target=frida.shutdown, daemon=True)
    closer.start()
    closer.join(3)
    os._exit(0)


if __name__ == "__main__":
    main()
