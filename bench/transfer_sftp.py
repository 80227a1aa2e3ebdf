"""SFTP transfer benchmark: dataferry against ``rclone copy``, both ways, through a
real OpenSSH sshd started on a free loopback port (the one the tests use).

    make bench            # or: .venv/bin/python bench/transfer_sftp.py

Cases: one 1 GiB file and 5,000 files of 16 KiB, local -> SFTP and SFTP -> local.
Prints wall time, throughput and dataferry's throughput as a ratio of rclone's,
measured in the same run. Target (issue 3): >= 1x rclone on every case.

Two dataferry rows per case: ``dataferry`` with its default SHA-256 of every byte,
and ``dataferry, no hash`` (``checksum: none``; sizes still checked), which does what
rclone does here (``--sftp-disable-hashcheck``: no hash on either side).

``BENCH_SFTP_DELAY_MS=10`` puts every tool's connection through a proxy that delays
each direction by 10 ms (a 20 ms round trip, as between two institutions; see
``delay_proxy.py``). Default 0: straight to the server. ``BENCH_SFTP_OPENSSH=0``
leaves out OpenSSH's client (it copies one file at a time: slow over such a link).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK, fresh, report, run, start_server, timed
from delay_proxy import DelayProxy
from tests.support.sshd import sshd_available, start_sshd
from transfer_local import LARGE, SMALL_FILES, SMALL_SIZE, make_sources


def timed_once(fn: Any, before: Any) -> float:
    """One run per case: SFTP cases are slow enough that one is a fair sample."""
    return timed(fn, repeat=1, before=before)


def ratios(t: float, t_rclone: float | None, t_openssh: float | None) -> str:
    parts = [f"{t_rclone / t:.2f}x rclone"] if t_rclone is not None else []
    if t_openssh is not None:
        parts.append(f"{t_openssh / t:.2f}x openssh")
    return ", ".join(parts)


def main() -> None:
    why = sshd_available()
    if why:
        raise SystemExit(f"skipped: {why}")
    base = WORK / "transfer_local"  # the same source files as the local benchmark
    large, small = make_sources(base / "src")
    work = WORK / "transfer_sftp"
    remote, back = fresh(work / "remote"), fresh(work / "back")
    sshd = start_sshd(Path(tempfile.mkdtemp(prefix="dataferry-bench-sshd-")))
    delay_ms = float(os.environ.get("BENCH_SFTP_DELAY_MS", "0"))
    proxy = DelayProxy(sshd.port, delay_ms) if delay_ms > 0 else None
    port = proxy.port if proxy else sshd.port
    if proxy:
        print(f"every connection through a proxy adding {delay_ms:g} ms each way")
    known = sshd.folder / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {sshd.public_host_key}\n")
    key = sshd.folder / "user_ed25519"
    rclone = shutil.which("rclone")
    if rclone is None:
        print("rclone not found: its rows are skipped (apt-get install rclone)")
    rc_flags = [
        "--sftp-host=127.0.0.1",
        f"--sftp-port={port}",
        f"--sftp-user={sshd.user}",
        f"--sftp-key-file={key}",
        f"--sftp-known-hosts-file={known}",
        # no md5sum/sha1sum shell command per file on the server: the faster rclone
        "--sftp-disable-hashcheck",
    ]
    sftp = shutil.which("sftp") if os.environ.get("BENCH_SFTP_OPENSSH", "1") != "0" else None
    # OpenSSH's own client as a second reference: the native floor of an SFTP copy on
    # this machine (no checksum, no sync), with the cipher rclone and dataferry use.
    os_flags = [
        "-q",
        "-b",
        "-",
        "-o",
        "BatchMode=yes",
        "-o",
        f"UserKnownHostsFile={known}",
        "-i",
        str(key),
        "-P",
        str(port),
        "-c",
        "aes128-gcm@openssh.com",
        f"{sshd.user}@127.0.0.1",
    ]

    def openssh(command: str) -> None:
        assert sftp is not None
        subprocess.run(
            [sftp, *os_flags],
            input=command + "\n",
            text=True,
            check=True,
            stdout=subprocess.DEVNULL,
        )

    server = start_server(work / "home")
    client = server.client()
    client.add_endpoint("src", str(base / "src"))
    client.add_endpoint("back", str(back))
    client.add_endpoint(
        "remote",
        f"sftp://{sshd.user}@127.0.0.1:{port}{remote}",
        {"known_hosts": str(known)},
        {"private_key": key.read_text()},
    )

    def dataferry(source: str, destination: str, checksum: str = "sha256") -> None:
        job = client.transfer(source, destination, checksum=checksum)
        doc = client.wait(job["job_id"])  # a long poll: answered when the job ends
        if doc["state"] != "succeeded":
            raise SystemExit(f"dataferry job failed: {doc}")

    rows: list[tuple[str, str, float, float, str]] = []

    def one_way(
        label: str,
        mb: float,
        into: Path,
        name: str,
        df_source: str,
        df_target: str,
        rclone_args: list[str],
        openssh_command: str,
    ) -> None:
        """Rows of one direction: every tool copies into ``into/<tool>-<name>``."""

        def clear() -> None:
            for tool in ("df", "rc", "os"):
                shutil.rmtree(into / f"{tool}-{name}", ignore_errors=True)

        t_df = timed_once(lambda: dataferry(df_source, df_target), before=clear)
        t_plain = timed_once(lambda: dataferry(df_source, df_target, "none"), before=clear)
        t_rc = t_os = None
        if rclone:
            t_rc = timed_once(lambda: run([rclone, "copy", *rclone_args, *rc_flags]), before=clear)
            rows.append((label, "rclone copy", t_rc, mb, ""))
        if sftp:
            t_os = timed_once(lambda: openssh(openssh_command), before=clear)
            rows.append((label, "openssh sftp", t_os, mb, ""))
        rows.append((label, "dataferry", t_df, mb, ratios(t_df, t_rc, t_os)))
        rows.append((label, "dataferry, no hash", t_plain, mb, ratios(t_plain, t_rc, t_os)))

    def measure(name: str, src: Path, total: int) -> None:
        mb = total / 1e6
        # upload: local -> SFTP
        one_way(
            f"{name} up ({mb:,.0f} MB)",
            mb,
            remote,
            name,
            f"src:{name}",
            f"remote:df-{name}",
            [str(src), f":sftp:{remote}/rc-{name}"],
            f"put -r {src} {remote}/os-{name}",
        )
        # download: SFTP -> local, from dataferry's copy (made again, untimed, when
        # clearing for a later tool removed it)
        if not (remote / f"df-{name}").exists():
            dataferry(f"src:{name}", f"remote:df-{name}")
        one_way(
            f"{name} down ({mb:,.0f} MB)",
            mb,
            back,
            name,
            f"remote:df-{name}",
            f"back:df-{name}",
            [f":sftp:{remote}/df-{name}", str(back / f"rc-{name}")],
            f"get -r {remote}/df-{name} {back}/os-{name}",
        )

    try:
        measure("large", large, LARGE)
        measure("small", small, SMALL_FILES * SMALL_SIZE)
    finally:
        client.close()
        server.kill()
        if proxy:
            proxy.stop()
        sshd.stop()
    report(rows)


if __name__ == "__main__":
    main()
