"""monitor.cleaners: cleaning and matching in worker processes, the rule set installed once per
worker and replaced on reload; threads when asked for (issue #4)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from monitor.cleaners import Cleaners
from monitor.cli import main
from monitor.match.rules import RuleSet
from tests.servers import LocalSite

pytestmark = pytest.mark.timeout(120)  # the first pool starts the forkserver: imports


def where_and_what(rules: RuleSet, tag: int) -> tuple[int, int, tuple[str, ...], int]:
    """In a worker: its pid, how many tasks its rule set object has served, the rule ids."""
    served = rules.__dict__.get("served_in_test", 0) + 1
    rules.__dict__["served_in_test"] = served
    return os.getpid(), served, tuple(rule.id for rule in rules.rules), tag


async def test_articles_are_cleaned_in_other_processes_with_the_rules_installed_once() -> None:
    cleaners = Cleaners(2)
    rules = RuleSet.from_query("election", rule_id="elections")
    try:
        results = await asyncio.gather(*(cleaners.run(rules, where_and_what, n) for n in range(12)))
    finally:
        await asyncio.to_thread(cleaners.close)
    pids = {pid for pid, _, _, _ in results}
    assert os.getpid() not in pids
    assert 1 <= len(pids) <= 2
    assert {ids for _, _, ids, _ in results} == {("elections",)}
    # One rule set object per process, kept across tasks: not a fresh copy with each article.
    for pid in pids:
        served = sorted(s for p, s, _, _ in results if p == pid)
        assert served == list(range(1, len(served) + 1))
    assert sorted(tag for _, _, _, tag in results) == list(range(12))


async def test_the_event_loop_runs_on_while_the_pool_starts() -> None:
    cleaners = Cleaners(2)
    rules = RuleSet.from_query("election", rule_id="elections")
    try:
        first = asyncio.create_task(cleaners.run(rules, where_and_what, 0))
        await asyncio.sleep(0)  # the first article's task has begun starting the pool
        loop_ran_meanwhile = cleaners.pools == 0 and not first.done()
        pid, _, _, _ = await first
    finally:
        await asyncio.to_thread(cleaners.close)
    assert loop_ran_meanwhile  # not blocked in the forkserver's start and the workers' forks
    assert pid != os.getpid()
    assert cleaners.pools == 1


async def test_a_reloaded_rule_set_reaches_the_workers() -> None:
    cleaners = Cleaners(1)
    before = RuleSet.from_query("election", rule_id="elections")
    after = RuleSet.from_query("torture", rule_id="torture")
    try:
        first = await cleaners.run(before, where_and_what, 0)
        second = await cleaners.run(after, where_and_what, 1)
        third = await cleaners.run(after, where_and_what, 2)
    finally:
        await asyncio.to_thread(cleaners.close)
    assert first[2] == ("elections",)
    assert second[2] == third[2] == ("torture",)
    assert third[1] == 2  # the new pool keeps the new rules too
    assert "pools=2" in repr(cleaners)


async def test_zero_clean_workers_cleans_in_threads_of_this_process() -> None:
    cleaners = Cleaners(0)
    rules = RuleSet.from_query("election", rule_id="elections")
    try:
        pid, _, ids, _ = await cleaners.run(rules, where_and_what, 0)
    finally:
        await asyncio.to_thread(cleaners.close)
    assert pid == os.getpid()
    assert ids == ("elections",)
    assert "threads=" in repr(cleaners)


KILLED_PARENT = """
import asyncio, sys
from monitor.cleaners import Cleaners
from monitor.match.rules import RuleSet
from tests.unit.test_cleaners import where_and_what

async def main():
    cleaners = Cleaners(1)
    pid, _, _, _ = await cleaners.run(RuleSet.from_query("election"), where_and_what, 0)
    print(pid, flush=True)
    await asyncio.Event().wait()

if __name__ == "__main__":
    asyncio.run(main())
"""


def test_worker_processes_exit_when_the_main_process_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(KILLED_PARENT, encoding="utf-8")
    parent = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    try:
        assert parent.stdout is not None
        worker = int(parent.stdout.readline())
        assert worker != parent.pid
    finally:
        parent.kill()
        parent.wait(30)
        if parent.stdout is not None:
            parent.stdout.close()
    deadline = time.monotonic() + 30
    while Path(f"/proc/{worker}").exists() and _state(worker) != "Z":
        assert time.monotonic() < deadline, f"worker {worker} outlived its main process"
        time.sleep(0.1)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return "gone"


class Descendants:
    """The processes below this one that appear while the block runs (read from /proc)."""

    def __init__(self) -> None:
        self.before = self._scan()
        self.seen: set[int] = set()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="descendants")

    def __enter__(self) -> Descendants:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._done.wait(0.05):  # a worker lives until the pool closes
            self.seen |= self._scan() - self.before

    @staticmethod
    def _scan() -> set[int]:
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:  # ended while we looked
                    continue
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        below, todo = set(), [os.getpid()]
        while todo:
            parent = todo.pop()
            children = {pid for pid, ppid in parents.items() if ppid == parent}
            below |= children
            todo.extend(children)
        return below


def test_a_poll_once_with_few_or_no_articles_to_clean_starts_no_worker_process(
    project: Path, site: LocalSite, capsys: pytest.CaptureFixture[str]
) -> None:
    config = project / "monitor.toml"
    config.write_text(
        f"""
[monitor]
timezone = "Asia/Almaty"
max_age = "0"
clean_workers = 2

[[source]]
name = "Test RSS"
url = "{site.url("feeds/rss.xml")}"
kind = "feed"
""",
        encoding="utf-8",
    )
    poll = ["--config", str(config), "poll", "--once", "--json"]
    with Descendants() as few:  # a handful of articles: cleaned in threads, no pool started
        assert main(poll) == 0
    cleaned = json.loads(capsys.readouterr().out.splitlines()[-1])["new_articles"]
    with Descendants() as nothing_new:  # the feed answers 304: no article to clean
        assert main(poll) == 0

    async def through_a_pool() -> None:
        cleaners = Cleaners(2)
        try:
            await cleaners.run(RuleSet.from_query("election"), where_and_what, 0)
        finally:
            await asyncio.to_thread(cleaners.close)

    with Descendants() as control:  # the same watch sees a pool's processes
        asyncio.run(through_a_pool())
    assert cleaned >= 1
    assert control.seen
    assert not few.seen
    assert not nothing_new.seen


async def test_tasks_run_in_threads_until_enough_wait_at_once() -> None:
    cleaners = Cleaners(2, pool_after=4)
    rules = RuleSet.from_query("election", rule_id="elections")
    try:
        alone = [await cleaners.run(rules, where_and_what, n) for n in range(3)]  # one at a time
        together = await asyncio.gather(*(cleaners.run(rules, where_and_what, n) for n in range(8)))
        after = await cleaners.run(rules, where_and_what, 9)  # the pool, once it runs
    finally:
        await asyncio.to_thread(cleaners.close)
    assert {pid for pid, _, _, _ in alone} == {os.getpid()}
    assert {pid for pid, _, _, _ in together} - {os.getpid()}  # from the 4th: workers
    assert after[0] != os.getpid()
    assert cleaners.pools == 1


async def test_a_big_catch_announced_starts_the_pool_with_its_first_task() -> None:
    cleaners = Cleaners(2, pool_after=4)
    rules = RuleSet.from_query("election", rule_id="elections")
    try:
        cleaners.expect(2)  # a small catch: threads
        small = await cleaners.run(rules, where_and_what, 0)
        cleaners.expect(-1)  # the other one was known already
        cleaners.expect(10)
        big = await cleaners.run(rules, where_and_what, 1)
    finally:
        await asyncio.to_thread(cleaners.close)
    assert small[0] == os.getpid()
    assert big[0] != os.getpid()
