"""nginx (Debian's package) as the load balancer in front of gateway replicas, run as a child
process with its configuration in a temporary directory (tests/deployment/test_replicas.py,
bench/replicas.py). `./scripts/test` installs it with apt-get when it is missing.

What a rolling restart needs from the balancer, and why the configuration says what it says:

- A replica told to stop (SIGTERM) closes its listener, finishes what it is answering (up to
  GATEWAY_SHUTDOWN_GRACE_S) and closes idle connections. nginx has no active health checks,
  so it goes on choosing that replica: a new connection is refused, which is an `error` before
  anything was sent, and nginx retries it on the next replica, POST included (nginx holds back
  only a non-idempotent request it has already sent).
- A few requests are sent and still not read: one that reached the kernel's accept queue, or
  an idle kept-alive connection, just as the listener or connection closes. They come back as
  `error` with the request sent, which nginx retries for POST only with `non_idempotent`.
  A model call that no replica answered is safe to run again (it is what the client's SDK
  would do after a 502: the OpenAI SDKs retry twice by default), so the inference routes get
  `non_idempotent`. Everything else (the admin API, passthrough routes such as files and
  batches, which create things) keeps nginx's default `error timeout`: a POST there is retried
  only when it never left nginx.
- `http_502`/`http_503` are not retry conditions: a 502 or 503 from a replica is the gateway's
  own answer about the provider (after its own retries and fallbacks) or its key store, and
  retrying it on another replica would multiply the calls to a provider that is already failing.
- A killed replica (SIGKILL, OOM) drops the requests it was running. One whose response had not
  begun is retried by the same rule; one whose response had begun reaches the client cut short.
- Upstream connections are kept alive (64 idle per worker), closed by nginx after 4 s idle:
  before the gateway's GATEWAY_KEEP_ALIVE_S (5 s), so nginx never reuses one the gateway is
  closing. `max_fails=1 fail_timeout=2s` takes a replica that failed out of the rotation for 2 s.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench.harness import free_port, wait_for_port

# Model calls: retried on another replica when none answered (see the module docstring).
INFERENCE = r"^/v1/(chat/completions|completions|embeddings)$"


def binary() -> str | None:
    """Debian puts nginx in /usr/sbin, which a non-root PATH may lack."""
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def config(folder: Path, port: int, upstreams: list[int], access_log: bool = False) -> str:
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;"
                        for p in upstreams)
    temp = "\n".join(f"    {kind}_temp_path {folder}/{kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    log = (f"access_log {folder}/access.log upstreams;" if access_log else "access_log off;")
    return f"""# One process (no master): a child of its test or benchmark, stopped with SIGTERM.
daemon off;
master_process off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 4096; }}
http {{
{temp}
    log_format upstreams '$status $request_time "$upstream_addr" "$upstream_status" $uri '
                         '$upstream_http_x_portkey_request_id';
    {log}
    upstream gateways {{
{servers}
        keepalive 64;
        keepalive_timeout 4s;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        client_max_body_size 32m;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_buffering off;
        proxy_connect_timeout 2s;
        proxy_send_timeout 600s;
        proxy_read_timeout 600s;
        proxy_next_upstream_tries 3;
        location ~ {INFERENCE} {{
            proxy_pass http://gateways;
            proxy_next_upstream error timeout non_idempotent;
        }}
        location / {{
            proxy_pass http://gateways;
            proxy_next_upstream error timeout;
        }}
    }}
}}
"""


@contextlib.contextmanager
def nginx(upstreams: list[int], access_log: bool = False) -> Iterator[tuple[int, Path]]:
    """nginx balancing over the gateways on `upstreams`; yields (port, its folder)."""
    executable = binary()
    if executable is None:
        raise RuntimeError("nginx is not installed (apt-get install nginx)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="nginx-") as tmp:
        folder = Path(tmp)
        (folder / "nginx.conf").write_text(config(folder, port, upstreams, access_log))
        proc = subprocess.Popen([executable, "-p", str(folder), "-c", str(folder / "nginx.conf"),
                                 "-e", str(folder / "error.log")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, proc, "nginx")
            yield port, folder
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # fast shutdown
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
