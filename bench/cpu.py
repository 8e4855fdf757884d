"""How much CPU the rest of the machine took while the suite measured.

The machine is shared: another program's work slows every figure down. A
:class:`OtherWork` block measures the CPU time the whole machine spent
(user, nice, system, irq and softirq, and the steal of a virtual machine's
host, which the run did not get either) and subtracts what the run itself
spent: this process and every process under it (the gunicorn
servers and their workers, the load generator once it has ended), and the
PostgreSQL and Redis servers listening on the given ports with every
process under them. What is left, over the wall time, is the work of other
programs, in cores. A process of the run that started and ended inside the
block (a short-lived PostgreSQL backend) is missed and counts as other
work, so the figure errs on the high side.
"""

import contextlib
import resource
import time

import psutil

BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq", "steal")


def listener(port: int) -> psutil.Process | None:
    """Return the process listening on TCP ``port`` of this machine, if any."""
    with contextlib.suppress(psutil.Error):
        for conn in psutil.net_connections(kind="tcp"):
            listening = conn.status == psutil.CONN_LISTEN and conn.pid is not None
            if listening and conn.laddr.port == port:
                return psutil.Process(conn.pid)
    return None


class OtherWork:
    """Measure, in cores, the CPU other programs took during the block.

    ``roots`` are processes of the run besides this one (the database
    servers); each counts with every process under it.
    """

    def __init__(self, roots: list[psutil.Process]):
        self.roots = roots
        self.cores = 0.0

    def __enter__(self) -> "OtherWork":
        self._started = time.monotonic()
        self._busy = _machine_busy()
        self._children = _reaped_children()
        self._ours = self._our_times()
        return self

    def __exit__(self, *exc_info) -> None:
        wall_s = time.monotonic() - self._started
        machine_s = _machine_busy() - self._busy
        ours_s = _reaped_children() - self._children
        for key, cpu_s in self._our_times().items():
            ours_s += cpu_s - self._ours.get(key, 0.0)
        self.cores = max(0.0, machine_s - ours_s) / wall_s if wall_s else 0.0

    def _our_times(self) -> dict[tuple[int, float], float]:
        """Return CPU seconds by (pid, start time) of every process of the run."""
        times = {}
        for root in [psutil.Process(), *self.roots]:
            with contextlib.suppress(psutil.Error):
                for process in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        cpu = process.cpu_times()
                        key = (process.pid, process.create_time())
                        times[key] = cpu.user + cpu.system
        return times


def _machine_busy() -> float:
    times = psutil.cpu_times()
    return sum(getattr(times, name, 0.0) for name in BUSY_FIELDS)


def _reaped_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
