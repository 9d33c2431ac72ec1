"""The public Python API; the command line calls exactly these functions and only formats their results.

    import cnnlab
    result = cnnlab.train(model="convnet", data="fashion-mnist", epochs=15)
    print(result.accuracy, result.run_dir)
    report = cnnlab.evaluate(result.run_dir, split="test")
    run = cnnlab.load_run(result.run_dir); model = run.model("best")
"""

from ..log import printing, quiet, show_messages
from ..runs import Run, Status, TrainResult, load_run
from ..train.callbacks import loss_text
from .average import average
from .catalog import ModelEntry, bench, datasets, models, optimizers, resolved_config, summary
from .checks import CheckReport, check, lr_find
from .data import (
    DataInfo,
    Verification,
    data_config,
    data_info,
    download_data,
    export_samples,
    show_samples,
    verify_data,
)
from .exports import export
from .lr_find import LR_FIND_MEASURED, LR_FIND_RULE, LR_FIND_RULES
from .pictures import (
    PathsPicture,
    Projections,
    deconv,
    evolution,
    feature_maps,
    filters,
    lr_plot,
    optim_paths,
    parse_rates,
    predictions,
)
from .power import PowerTable, study_power
from .studies import (
    StudyTable,
    compare_optimizers,
    crossing_references,
    ensemble,
    error_crossing,
    features,
    packaged_studies,
    plan_study,
    predict_study,
    report,
    run_study,
    study,
    study_plot,
    study_table,
    study_text,
    study_worker,
)
from .training import (
    check_distributed,
    draw_curves,
    evaluate,
    launch_torchrun,
    main_process,
    make_config,
    predict,
    train,
)
from .tuning import tune, tune_grid, tune_search

__all__ = [
    "DataInfo", "ModelEntry", "PathsPicture", "Projections", "Run", "Status", "StudyTable", "TrainResult",
    "Verification", "bench", "check_distributed", "compare_optimizers", "crossing_references", "data_config",
    "data_info", "datasets",
    "deconv", "download_data", "draw_curves", "ensemble", "error_crossing", "evaluate", "evolution",
    "export", "export_samples", "feature_maps", "features", "filters", "launch_torchrun", "load_run", "loss_text",
    "lr_plot", "main_process", "make_config", "models", "optim_paths", "optimizers", "parse_rates", "plan_study",
    "predict_study", "predict", "predictions", "printing", "quiet", "report", "resolved_config", "run_study",
    "show_messages", "show_samples", "study_plot", "PowerTable",
    "study_power", "study_table", "study_worker", "summary", "train", "tune_grid", "tune_search", "verify_data",
    "CheckReport", "check", "lr_find",  # cnnlab check, cnnlab lr-find
    "LR_FIND_RULE", "LR_FIND_RULES", "LR_FIND_MEASURED",
    "average",  # cnnlab average
    "study", "packaged_studies", "study_text", "tune",  # cnnlab study run/list/show, cnnlab tune
]
