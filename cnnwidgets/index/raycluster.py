"""How cnnwidgets reaches a Ray cluster: a local one it starts for itself is closed to the network, and every
cluster is reached with Ray's token authentication when a token is there.

A local cluster (no ``address`` and no ``RAY_ADDRESS``) is started with every component on 127.0.0.1 (Ray's own
switch for a single-machine cluster, ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, which makes it take the loopback
address instead of the machine's), no dashboard, and token authentication (``RAY_AUTH_MODE=token``), because on a
shared server every local user can reach 127.0.0.1. The token is Ray's default file, ``~/.ray/auth_token``,
created readable by its owner only when it is missing.

A cluster given by ``address`` (or ``RAY_ADDRESS``) is used as it is. Token authentication is switched on for the
connection when Ray finds a token the way it documents it: ``RAY_AUTH_TOKEN``, the file named by
``RAY_AUTH_TOKEN_PATH``, or ``~/.ray/auth_token``. A refused connection raises :class:`RayConnectError`, one line
that says what to set.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import secrets
import socket
import stat
import sys
import tempfile
from pathlib import Path

__all__ = [
    "RayConnectError",
    "connect",
    "token_path",
    "token_available",
    "LOCAL_ONLY_ENV",
    "AUTH_MODE_ENV",
    "first_line",
]

log = logging.getLogger(__name__)

AUTH_MODE_ENV = "RAY_AUTH_MODE"
TOKEN_ENV = "RAY_AUTH_TOKEN"
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"
LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray's switch that makes a node take 127.0.0.1 as its address ("0"); read by Ray when it is imported."""

TOKEN_FIX = "set RAY_AUTH_TOKEN to what `ray get-auth-token` prints on its head node, or put it in ~/.ray/auth_token"
TOKEN_HINT = "A cluster with token authentication (the default of `ray start`) also needs its token in RAY_AUTH_TOKEN."


class RayConnectError(ConnectionError):
    """This process could not connect to a Ray cluster; the message is one line that names the fix."""


def token_path() -> Path:
    """The file Ray reads its token from: ``RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token``."""
    explicit = os.environ.get(TOKEN_PATH_ENV, "").strip()
    return Path(explicit).expanduser() if explicit else Path.home() / ".ray" / "auth_token"


def token_available() -> bool:
    """Whether Ray would find a token: ``RAY_AUTH_TOKEN`` set, or a non-empty token file."""
    if os.environ.get(TOKEN_ENV, "").strip():
        return True
    try:
        return token_path().read_text(encoding="utf-8").strip() != ""
    except OSError:
        return False


def _private_token_file() -> None:
    """Make sure the token file exists and only its owner can read it (Ray writes it with the umask's mode)."""
    if os.environ.get(TOKEN_ENV, "").strip():
        return
    path = token_path()
    try:
        if not path.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(secrets.token_hex(32))
        elif path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            path.chmod(0o600)
            log.info("%s was readable by other users; it is now readable by its owner only", path)
    except FileExistsError:  # another process created it in the meantime
        pass
    except OSError as exc:
        log.info("Ray token file %s not prepared (%s); Ray makes its own", path, exc)


def _set_auth_mode_token() -> None:
    os.environ[AUTH_MODE_ENV] = "token"
    try:  # Ray caches its configuration when it is imported: read the variable again
        from ray._raylet import Config

        Config.initialize("")
    except (ImportError, AttributeError):  # pragma: no cover - another Ray version
        pass


def _local_only() -> None:
    """Make a node started by this process take 127.0.0.1, in this process and in the ones Ray starts."""
    os.environ[LOCAL_ONLY_ENV] = "0"
    try:
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False  # the value Ray read from the variable when it was imported
    except ImportError:  # pragma: no cover - another Ray version
        pass


def connect(ray, address: str | None = None, *, num_cpus: int | None = None):
    """Connect ``ray`` (the imported module) to a cluster unless it already is; returns ``ray``.

    Parameters
    ----------
    ray : module
        The ``ray`` module.
    address : str, optional
        A running cluster (``"auto"``, ``"host:6379"``, ``"ray://host:10001"``); default ``RAY_ADDRESS``, else a
        new local cluster on 127.0.0.1 with token authentication and no dashboard.
    num_cpus : int, optional
        CPUs of a new local cluster (default: the machine's).

    Raises
    ------
    RayConnectError
        When the cluster cannot be reached or refuses the connection.
    """
    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS", "").strip() or None
    quiet = dict(include_dashboard=False, log_to_driver=False, logging_level="warning")
    if address is None:
        _local_only()
        _private_token_file()
        _set_auth_mode_token()
        try:
            ray.init(address="local", num_cpus=num_cpus, _node_ip_address="127.0.0.1", **quiet)
        except Exception as exc:
            ray.shutdown()
            raise RayConnectError(f"could not start a local Ray cluster: {first_line(exc)}") from None
        return ray
    if _on_loopback(address):  # Ray would turn 127.0.0.1 into the machine's address, where the head does not listen
        _local_only()
    if os.environ.get(AUTH_MODE_ENV) is None and token_available():
        _set_auth_mode_token()
    failure = None
    with _stderr_kept() as kept:
        try:
            failure = _token_refused(address)
            if failure is None:
                ray.init(address=address, **{k: v for k, v in quiet.items() if k != "include_dashboard"})
        except Exception as exc:
            failure = exc
    if failure is not None:  # what Ray printed is in kept.text once the block has ended
        ray.shutdown()
        raise RayConnectError(_refusal(address, failure, kept.text)) from None
    _pass_on(kept.text)
    return ray


def _token_refused(address: str) -> BaseException | None:
    """Ask the cluster's GCS once whether it takes this process's token, before ``ray.init`` (which retries a
    refused token for about 20 s): Ray's ``AuthenticationError`` when it refuses it, else None. Only a
    ``host:port`` address that accepts a TCP connection within a second is asked; anything else is left to
    ``ray.init``."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host:
        return None
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=1):
            pass
        from ray._raylet import GcsClient
        from ray.exceptions import AuthenticationError
    except (OSError, ValueError, ImportError):
        return None
    try:
        GcsClient(address=address)
    except AuthenticationError as exc:
        return exc
    except Exception:  # anything else: ray.init tries again and says what went wrong
        return None
    return None


def _refusal(address: str, exc: BaseException, said: str) -> str:
    """The one-line reason a connection to ``address`` failed, from the exception and what Ray printed."""
    said = f"{said}\n{exc}"
    if "InvalidAuthToken" in said or "Unauthenticated" in said:
        if token_available():
            return f"the Ray cluster at {address} refused this process's token: {TOKEN_FIX}"
        return f"the Ray cluster at {address} needs a token and none was found: {TOKEN_FIX}"
    return f"could not connect to the Ray cluster at {address} ({first_line(exc)}); is it running? {TOKEN_HINT}"


class _Kept:
    text = ""


@contextlib.contextmanager
def _stderr_kept():
    """Keep what is written to file descriptor 2 (Ray's C++ retries) while the block runs, in ``.text``."""
    kept = _Kept()
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (some notebook front ends): nothing to keep
        yield kept
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield kept
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept.text = tmp.read().decode("utf-8", "replace")


def _pass_on(text: str) -> None:
    """Write back what Ray printed while connecting, but its retry lines (kept in its own logs)."""
    lines = [line for line in text.splitlines() if line.strip() and "gcs_client.cc" not in line]
    if lines:
        print("\n".join(lines), file=sys.stderr)


def _on_loopback(address: str) -> bool:
    """Whether ``address`` ("host:port", "ray://host:port", "auto") names this machine's loopback interface."""
    if address == "auto":
        try:
            from ray._private import services

            address = services.find_bootstrap_address(None) or ""
        except Exception:  # pragma: no cover - another Ray version
            return False
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (at most 160 characters), or its type's name."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]
