"""The processes that run the graph's nodes: started for this run, stopped with it.

Nipype's nodes run in worker processes (niworkflows' ``MultiProcPlugin`` over a forkserver
pool, as in fMRIPrep).  A worker must never outlive the run that started it: on SIGTERM or
SIGINT the run stops them before it exits, and a worker whose run was killed (SIGKILL, out of
memory) exits by itself.
"""

import ctypes
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, suppress
from multiprocessing import get_context

ORPHAN_CHECK_SECONDS = 2.0  # how often a worker checks that its run is still alive
_PR_SET_PDEATHSIG = 1  # prctl(2) option: the signal a process gets when its parent exits
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class RunInterrupted(BaseException):
    """The run got SIGTERM or SIGINT (a scheduler, a container runtime or Ctrl-C)."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum
        self.name = signal.Signals(signum).name

    @property
    def exit_code(self):
        return 128 + self.signum


def worker_pool(n_procs, run_pid):
    """A forkserver pool of ``n_procs`` workers that exit when the process ``run_pid`` is gone."""
    return ProcessPoolExecutor(
        max_workers=n_procs, mp_context=get_context("forkserver"),
        initializer=_start_worker, initargs=(os.getcwd(), run_pid),
    )


def _start_worker(cwd, run_pid):
    """Each worker: the run's folder, no network check, and exit with the run."""
    os.chdir(cwd)
    os.environ["NIPYPE_NO_ET"] = "1"
    if sys.platform.startswith("linux"):  # die with the forkserver, which exits when the run dies
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    threading.Thread(target=_exit_without, args=(run_pid,), daemon=True, name="deepwmh-run-watch").start()


def _exit_without(run_pid):
    """Exit this worker once the run's process no longer exists (the portable fallback)."""
    while True:
        time.sleep(ORPHAN_CHECK_SECONDS)
        try:
            os.kill(run_pid, 0)
        except (ProcessLookupError, PermissionError):  # gone, or its pid reused by another user
            os._exit(1)


@contextmanager
def stop_on_signals():
    """Turn SIGTERM and SIGINT into :class:`RunInterrupted` in the main thread while inside."""

    def interrupt(signum, frame):
        raise RunInterrupted(signum)

    previous = {signum: signal.signal(signum, interrupt) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def stop_workers(pool, grace_seconds=5.0):
    """Cancel queued nodes and end every process this run started (the pool's workers and its
    forkserver): SIGTERM, then SIGKILL after the grace time.  Returns how many were running."""
    import psutil

    pool.shutdown(wait=False, cancel_futures=True)
    workers = psutil.Process().children(recursive=True)
    for worker in workers:
        with suppress(psutil.NoSuchProcess):
            worker.terminate()
    _, alive = psutil.wait_procs(workers, timeout=grace_seconds)
    for worker in alive:
        with suppress(psutil.NoSuchProcess):
            worker.kill()
    return len(workers)


def critical_path_plugin(new_pool, plugin_args):
    """niworkflows' MultiProc plugin over the pools ``new_pool()`` makes that, of the nodes ready to
    run, submits first those that the most other nodes wait on (a scan's segmentation before its
    figures), and runs the quick nodes that stay in this process (the sinks) only after the workers
    have theirs.

    A worker killed (by the system when memory runs out, or by hand) breaks its pool: each node the
    pool was running is then a crash that says so (``BrokenProcessPool``) and the next nodes go to a
    new pool (niworkflows' plugin alone waits for ever for the results of a broken pool)."""
    from concurrent.futures.process import BrokenProcessPool
    from functools import partial
    from traceback import format_exception

    import networkx as nx
    from niworkflows.engine.plugin import MultiProcPlugin, run_node

    class CriticalPathFirstPlugin(MultiProcPlugin):
        def run(self, graph, config, updatehash=False):
            self._waiting = {node: len(nx.descendants(graph, node)) for node in graph}
            self._pool_broken = False
            return super().run(graph, config, updatehash=updatehash)

        def _sort_jobs(self, jobids, scheduler="tsort"):
            return sorted(jobids, key=lambda j: (bool(self.procs[j].run_without_submitting),
                                                 -self._waiting[self.procs[j]]))

        def _submit_job(self, node, updatehash=False):
            """niworkflows' submission, with a new pool if the last one broke, and the task's id
            given to its callback (a future done at once would not be found by it)."""
            if self._pool_broken:
                self.pool.shutdown(wait=False, cancel_futures=True)
                self.pool, self._pool_broken = new_pool(), False
            self._taskid += 1
            if getattr(node.interface, "terminal_output", "") == "stream":
                node.interface.terminal_output = "allatonce"
            future = self.pool.submit(run_node, node, updatehash, self._taskid)
            future.add_done_callback(partial(self._task_done, self._taskid))
            self._task_obj[self._taskid] = future
            return self._taskid

        def _task_done(self, taskid, future):
            try:
                result = future.result()
            except BrokenProcessPool as exc:  # a worker of the pool was killed
                self._pool_broken = True
                result = {"taskid": taskid, "result": None, "traceback": format_exception(exc)}
            self._taskresult[taskid] = result

    return CriticalPathFirstPlugin(pool=new_pool(), plugin_args=plugin_args)
