"""``take_over_renames`` and the rename plan (pure): which tracked job a renamed module takes."""

from __future__ import annotations

from lakeflow_job_meta.planning.compiler import CompiledJob
from lakeflow_job_meta.planning.plan import TrackedJob, plan_module, take_over_renames


def job(name: str, *renamed_from: str) -> CompiledJob:
    return CompiledJob(
        module_name=name, job_name=name, settings={"name": name}, renamed_from=list(renamed_from)
    )


def tracked(name: str, job_id: int) -> TrackedJob:
    return TrackedJob(module_name=name, job_id=job_id, spec_hash="v1:old")


def test_the_old_names_job_moves_to_the_new_module() -> None:
    view = take_over_renames({"old": tracked("old", 7)}, {"new": job("new", "old")}, {"new"})
    assert set(view) == {"new"}
    assert (view["new"].job_id, view["new"].renamed_from, view["new"].module_name) == (7, "old", "new")
    change = plan_module(job("new", "old"), view["new"], None)
    assert (change.action, change.job_id, change.renamed_from) == ("update", 7, "old")


def test_an_old_name_still_in_the_metadata_is_not_taken() -> None:
    view = take_over_renames({"old": tracked("old", 7)}, {"new": job("new", "old")}, {"new", "old"})
    assert set(view) == {"old"}


def test_a_module_with_its_own_job_takes_nothing() -> None:
    rows = {"old": tracked("old", 7), "new": tracked("new", 8)}
    view = take_over_renames(rows, {"new": job("new", "old")}, {"new"})
    assert view["new"].job_id == 8 and view["old"].job_id == 7  # the old one follows the prune policy


def test_a_row_left_behind_is_finished_by_the_module_holding_its_job() -> None:
    rows = {"old": tracked("old", 7), "new": tracked("new", 7)}
    view = take_over_renames(rows, {"new": job("new", "old")}, {"new"})
    assert set(view) == {"new"} and view["new"].renamed_from == "old"


def test_the_first_listed_old_name_with_a_job_wins_once() -> None:
    rows = {"a": tracked("a", 1), "b": tracked("b", 2)}
    view = take_over_renames(rows, {"new": job("new", "a", "b")}, {"new"})
    assert view["new"].job_id == 1 and view["b"].job_id == 2
