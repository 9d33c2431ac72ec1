"""Shared fixtures. Every data file a test reads is written by the tests, in the real on-disk format."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):  # `make test` runs two workers on two cores: one thread each, so they
    os.environ["OMP_NUM_THREADS"] = "1"  # (and the cnnlab subprocesses, which inherit it) do not fight over cores
    import torch

    torch.set_num_threads(1)

# The tests send SIGINT to cnnlab processes as Ctrl-C at a terminal would. A shell starts a background job (`make test
# &`, nohup, CI wrappers) with SIGINT ignored, and a child inherits that: Python then never raises
# KeyboardInterrupt and the tests would measure the wrapper, not cnnlab. So the test processes restore it (a Python
# handler is reset to the default at exec); the tests of an ignored SIGINT set that up themselves.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

from tests.helpers import write_mnist_like  # noqa: E402

RELIABILITY = Path(__file__).parent / "reliability"

# The longest tests (each 30 s to 2 min of real processes on two cores), run by `make test-long`, not by `make test`,
# which must stay under six minutes on two cores (CI's .ci/run runs both, one after the other). Each kind keeps a shorter relative in `make test`: a docs
# page (first-session, optimizers), a kill -9 resume, a SQLite search kill, PostgreSQL's two workers, an export
# format, a distributed run, a notebook. Chosen from `--durations` of a full run; listed here, in one place.
LONG = {
    # make test over six minutes on two idle cores (513 s, 1,103 tests; then 379 s, then 367 s): these joined the long set, each with a
    # faster relative left in make test (the type check and the README's first session run in CI's test-long)
    "tests/test_types.py::test_the_package_type_checks",
    "tests/test_benchmarks.py::test_peers_cpu_trains_the_same_network_three_ways_at_each_precision_and_writes_its_json"
    "[bf16]",
    "tests/experiments/test_dry_run_edges.py::test_a_dry_run_leaves_out_the_finished_runs_and_refuses_a_changed_study",
    "tests/experiments/test_dry_run_edges.py::test_a_greedy_dry_run_counts_the_runs_the_search_trains",
    "tests/experiments/test_packaged.py::test_study_list_show_and_run_by_name_from_another_folder",
    "tests/experiments/test_average.py::test_eval_and_predict_accept_the_averaged_run",
    "tests/test_notebooks.py::test_a_tutorial_notebook_runs[alexnet-notebook]",
    "tests/test_notebooks.py::test_a_tutorial_notebook_runs[first-session-notebook]",
    "tests/experiments/test_export.py::test_an_export_that_differs_is_refused_and_not_left_behind",
    "tests/models/test_pretrained.py::test_downloaded_once_with_its_hash_then_reused_offline",
    "tests/data/test_folder.py::test_alexnet_sized_input_trains_through_every_loader[none]",
    "tests/reliability/test_processes.py::test_kill_9_of_a_jobs_study_ends_its_workers_and_the_study_run_again_resumes_"
    "their_runs",
    "tests/reliability/test_checkpoints.py::test_sigkill_while_checkpoints_are_written_leaves_a_loadable_one_and_resume_"
    "completes",
    "tests/reliability/test_checkpoints.py::test_disk_full_while_saving_is_a_message_and_the_run_resumes",
    "tests/experiments/test_tune_postgres.py::test_two_workers_share_one_search_through_postgresql",
    "tests/test_docs_sessions.py::test_a_page_runs_as_written[tutorials/optimizers.md]",
    "tests/reliability/test_untrusted_files.py::test_eval_and_report_never_write_through_a_link_out_of_the_run",
    "tests/reliability/test_untrusted_files.py::test_predict_decodes_a_huge_photo_at_the_size_the_network_needs",
    "tests/test_readme.py::test_a_readme_session_runs_as_written[0]",
    "tests/reliability/test_divergence.py::test_every_way_of_diverging_ends_as_diverged_with_the_last_good_checkpoint",
    "tests/test_benchmarks.py::test_step_choices_times_each_choice_against_cnnlabs_step_with_its_fraction_of_peak",
    "tests/reliability/test_reports_say.py::test_a_diverged_run_is_exported_only_when_allowed_and_its_description_"
    "says_so",
    "tests/test_bench.py::test_compiled_training_computes_the_eager_losses",
    "tests/test_docs_sessions.py::test_a_page_runs_as_written[tutorials/first-session.md]",
    "tests/reliability/test_plan_file.py::test_deleting_a_damaged_plan_as_advised_plans_the_study_anew_and_reuses_"
    "its_runs",
    "tests/test_viz.py::test_the_pictures_of_a_trained_alexnet",
    "tests/experiments/test_study_files.py::test_the_caltech_alexnet_study_runs_end_to_end",
    "tests/test_distributed.py::test_two_machines_through_c10d_equal_one_process_then_resume_onto_one_and_onto_two",
    "tests/test_distributed.py::test_sigterm_ends_every_rank_with_a_checkpoint_that_resumes_on_one_process",
    "tests/reliability/test_search_kills.py::test_a_search_signalled_at_random_steps_ends_with_every_point_once",
    "tests/reliability/test_search_kills.py::test_a_search_signalled_mid_trial_continues_that_trial_on_sqlite[SIGINT]",
    *(f"tests/reliability/test_search_kills.py::test_a_search_signalled_mid_trial_continues_that_trial_on_postgresql"
      f"[{name}]" for name in ("SIGINT", "SIGTERM", "SIGKILL")),
    "tests/experiments/test_verdicts.py::test_until_decided_adds_seeds_only_where_undecided_and_is_resumable",
    "tests/experiments/test_verdicts.py::test_a_tuned_studys_table_judges_each_retrained_run_against_the_first",
    *(f"tests/test_docs_sessions.py::test_a_page_runs_as_written[{page}]" for page in (
        "tutorials/ablation.md", "how-to/bad-data.md", "how-to/resuming.md", "explanation/guarantees.md",
        "reference/config.md", "reference/exit-codes.md", "how-to/checks.md")),
    "tests/reliability/test_processes.py::test_two_study_processes_share_one_study_and_do_every_run_exactly_once",
    "tests/reliability/test_processes.py::test_a_signal_after_the_last_epoch_completes_that_run_and_starts_no_other",
    "tests/experiments/test_export.py::test_export_is_checked_describes_its_input_and_predicts[exported-program]",
    "tests/experiments/test_export.py::test_export_is_checked_describes_its_input_and_predicts[torchscript]",
    "tests/experiments/test_study.py::test_killing_a_study_midway_then_rerunning_completes_it_without_repeating_runs[2]",
    "tests/optim/test_studies.py::test_optim_paths_writes_png_and_animated_gif",
    "tests/test_notebooks.py::test_a_tutorial_notebook_runs[transfer-notebook]",
    "tests/test_notebooks.py::test_a_tutorial_notebook_runs[optimizers-notebook]",
    "tests/test_notebooks.py::test_interrupting_the_kernel_stops_a_run_that_the_next_cell_resumes",
    "tests/test_checks_cli.py::test_lr_find_writes_its_plot_and_csv_and_suggests_within_the_range",
    "tests/test_checks_cli.py::test_check_overfit_passes_on_digits_and_fails_with_an_lr_that_cannot_learn",
    "tests/experiments/test_study.py::test_killing_a_study_midway_then_rerunning_completes_it_without_repeating_runs[1]",
    "tests/reliability/test_inputs.py::test_a_signal_while_a_study_is_checked_stops_it_before_anything_is_written",
    "tests/reliability/test_inputs.py::test_a_read_only_or_full_disk_is_refused_before_anything_is_written[read-only]",
    "tests/reliability/test_processes.py::test_ctrl_c_while_the_program_loads_ends_it_without_a_traceback",
    "tests/test_distributed.py::test_a_signal_while_the_ranks_meet_ends_them_at_once",
    "tests/test_wheel.py::test_the_wheel_outside_the_clone_runs_the_first_session_and_a_packaged_study",
    "tests/reliability/test_damaged_files.py::test_many_damaged_files_of_a_finished_run",
    "tests/reliability/test_tracking_fails_fast.py::test_a_server_that_never_answers_costs_one_probe_and_one_warning",
    # (its in-process relative: tests/train/test_tracking.py's unwritable store, now found by the same probe)
    "tests/reliability/test_tracking_fails_fast.py::test_a_store_on_a_read_only_file_system_is_one_warning_or_refused"
    "_when_required",
    "tests/reliability/test_search_kills.py::test_a_search_signalled_mid_trial_continues_that_trial_on_sqlite[SIGKILL]",
    "tests/reliability/test_damaged_files.py::test_many_damaged_files_of_a_finished_study",
    "tests/test_hints.py::test_an_export_says_how_to_predict_with_it_and_that_command_runs_in_a_shell",
    # (its fast relatives: tests/train/test_speed.py's probe without a compile, and the run that records its decision)
    "tests/train/test_speed.py::test_auto_compiles_the_probe_when_the_run_could_pay_and_records_both_steps",
    # (its relative in make test: bf16 alone, the new path of both peers)
    "tests/test_benchmarks.py::test_peers_cpu_trains_the_same_network_three_ways_at_each_precision_and_writes_its_json"
    "[fp32,bf16]",
    # (its relative: the same script's in-process sections, test_scaling_times_the_step_against_...)
    "tests/test_benchmarks.py::test_scaling_trains_in_memory_and_streamed_datasets_and_a_study_on_one_and_two_jobs",
    *(f"tests/test_keys.py::test_every_key_changes_the_run_or_says_why_not[{kind}]"
      for kind in ("fashion-mnist", "digits", "imagefolder")),
}
# Tests that share a module fixture costing tens of seconds (the built site, a trained run to export) run on one
# worker (`--dist loadgroup`), so the fixture is made once, not once per worker.
SHARED_FIXTURE_FILES = ("tests/test_docs.py", "tests/experiments/test_export.py")


def pytest_itemcollected(item: pytest.Item) -> None:
    """Every test of tests/reliability runs the real program in subprocesses: slow (`pytest -m "not slow"`
    leaves them out of a quick loop)."""
    if RELIABILITY in Path(str(item.fspath)).parents:
        item.add_marker(pytest.mark.slow)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: every listed test is seen
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests of LONG are marked `long` (and slow); a LONG name that no longer names a test of a collected
    file is an error, so a renamed test cannot leave `make test-long` unnoticed. Then the slow tests (real
    processes, real training) first, the quick ones after. `make test` hands the two workers one test at a
    time (--maxschedchunk 1), so they share the long ones from the start and the quick ones fill the end,
    instead of one worker finishing a long test alone while the other has nothing."""
    names = {item.nodeid for item in items}
    whole = not any("::" in arg for arg in config.args)  # whole files collected (not `pytest FILE::TEST`)
    files = {name.split("::")[0] for name in names} if whole else set()
    stale = sorted(name for name in LONG if name.split("::")[0] in files and name not in names)
    if stale:
        raise pytest.UsageError(f"tests/conftest.py LONG names tests that do not exist: {', '.join(stale)}")
    for item in items:
        if item.nodeid.split("::")[0] in SHARED_FIXTURE_FILES:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
        if item.nodeid in LONG:
            item.add_marker(pytest.mark.long)
            item.add_marker(pytest.mark.slow)
    items.sort(key=_order)


def _order(item: pytest.Item) -> tuple[bool, bool]:
    """Slow tests first, and first of them those marked `slow(first=True)` (the longest, so that neither
    worker is left with one at the end)."""
    slow = item.get_closest_marker("slow")
    return slow is None, not (slow is not None and slow.kwargs.get("first", False))


@pytest.fixture(autouse=True)
def isolated_data_roots(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads the developer's own dataset cache: $CNNLAB_DATA and the user cache point at empty dirs."""
    root = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(root))
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    return root


@pytest.fixture
def mnist_root(tmp_path: Path) -> Path:
    """A data root holding a small MNIST in the torchvision-style layout root/mnist/."""
    write_mnist_like(tmp_path / "data" / "mnist", gz=True)
    return tmp_path / "data"

