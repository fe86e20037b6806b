"""`ops hosts reboot` on Hetzner's hosts (and the lab's): the deploy script's `reboot-required` and
`reboot` verbs over the deploy's SSH path, and its readiness from the same `current` and `ready` verbs a
deploy uses (ops.adapters.cloud.ssh_hosts)."""

from __future__ import annotations

from ops.adapters.cloud.ssh_hosts import SshHosts
from ops.errors import ExternalError
from ops.ports import NOTHING_DEPLOYED, Candidate


class SshReboots:
    """The cloud's `RebootableHosts` (ops.reboot), over the hosts a deploy reaches."""

    def __init__(self, hosts: SshHosts) -> None:
        self._hosts = hosts

    def names(self) -> list[str]:
        return self._hosts.roles()  # the serving host last

    def role(self, name: str) -> str:
        return self._hosts.host(name).role

    def _address(self, name: str) -> str:
        address = self._hosts.host(name).address
        assert address is not None  # SshHosts refuses a host without one
        return address

    def pending(self, name: str) -> list[str] | None:
        said = self._hosts.ssh.run(self._address(name), ["reboot-required"]).stdout.decode().split()
        if not said or said[0] not in ("yes", "no"):
            raise ExternalError(f"{name}: `autoenroll-deploy reboot-required` answered {' '.join(said)!r}",
                                hint="a host made before the reboot verbs needs its deploy script updated "
                                     "(user data runs at first boot only: rebuild it)")
        return said[1:] if said[0] == "yes" else None

    def reboot(self, name: str) -> str:
        try:
            done = self._hosts.ssh.run(self._address(name), ["reboot"], root=True)
        except ExternalError as exc:
            if "cannot reach the host" not in exc.message and "no answer in" not in exc.message:
                raise
            # The shutdown ended the session before the verb said anything: what a reboot looks like.
            return "session ended"
        return done.stdout.decode().strip() or "rebooting"

    def ready(self, name: str, timeout: float) -> str | None:
        version, address = self._hosts.current(name)
        if version == NOTHING_DEPLOYED:
            return "nothing deployed on it"
        return self._hosts.wait_ready(Candidate(name, version, address), timeout)
