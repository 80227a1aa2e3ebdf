"""A real OpenSSH ``sshd`` on a free loopback port, with a throwaway host key and
user key, for SFTP tests and benchmarks (``make system-deps`` installs it)."""

from __future__ import annotations

import getpass
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.services import free_port, port_open

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
# A throwaway account for the password test (created only when running as root).
PASSWORD_USER = "dataferry-sftp"
PASSWORD = "ferry-Test-pw-1"


def sshd_available() -> str:
    """ "" when sshd can run here, else why not."""
    if not os.path.exists(SSHD):
        return "OpenSSH sshd is not installed (make system-deps installs openssh-server)"
    if not shutil.which("ssh-keygen"):
        return "ssh-keygen is not installed"
    return ""


def _keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path), "-C", "dataferry-test"],
        check=True,
    )
    return path.with_name(path.name + ".pub").read_text().strip()


def ensure_password_user() -> Path | None:
    """The password test's account and a folder it owns; None when not root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PASSWORD_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--no-create-home", "--shell", "/bin/sh", PASSWORD_USER],
            check=True,
            capture_output=True,
        )
    subprocess.run(
        ["chpasswd"],
        input=f"{PASSWORD_USER}:{PASSWORD}",
        text=True,
        check=True,
        capture_output=True,
    )
    entry = pwd.getpwnam(PASSWORD_USER)
    folder = Path(tempfile.mkdtemp(prefix="dataferry-sftp-"))
    os.chown(folder, entry.pw_uid, entry.pw_gid)
    return folder


@dataclass
class SSHServer:
    folder: Path
    port: int
    user: str
    private_key: str
    public_host_key: str
    proc: subprocess.Popen[bytes]

    @property
    def known_hosts(self) -> str:
        return f"[127.0.0.1]:{self.port} {self.public_host_key}\n"

    def url(self, path: str | Path, user: str | None = None) -> str:
        return f"sftp://{user or self.user}@127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_sshd(folder: Path) -> SSHServer:
    """Start sshd in the foreground (``-D``) with everything under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    host_key = folder / "host_ed25519"
    user_key = folder / "user_ed25519"
    host_pub = _keygen(host_key)
    user_pub = _keygen(user_key)
    (folder / "authorized_keys").write_text(user_pub + "\n")
    os.chmod(folder / "authorized_keys", 0o600)
    port = free_port()
    root = os.geteuid() == 0
    if root:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
    config = folder / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"PidFile {folder / 'sshd.pid'}",
                f"AuthorizedKeysFile {folder / 'authorized_keys'}",
                "StrictModes no",
                "PubkeyAuthentication yes",
                f"PasswordAuthentication {'yes' if root else 'no'}",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "PermitRootLogin yes",
                "Subsystem sftp internal-sftp",
                "MaxSessions 64",
                "MaxStartups 64:30:128",
                "LogLevel ERROR",
                # OpenSSH's defaults plus one CBC cipher, for the test that the empty
                # SSH_MSG_IGNORE countermeasure is kept on CBC (test_sftp_wire.py)
                "Ciphers +aes128-cbc",
                "",
            ]
        )
    )
    log = open(folder / "sshd.log", "ab")  # noqa: SIM115 - lives as long as sshd
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
    log.close()
    deadline = time.monotonic() + 20
    while not port_open("127.0.0.1", port, timeout=0.2):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"sshd did not start:\n{(folder / 'sshd.log').read_text()}")
        time.sleep(0.05)
    return SSHServer(
        folder=folder,
        port=port,
        user=getpass.getuser(),
        private_key=user_key.read_text(),
        public_host_key=" ".join(host_pub.split()[:2]),
        proc=proc,
    )
