"""What pyproject.toml cannot say: the study files of studies/ go into the package as `cnnlab.studies`, every
file of the folder (a study added there ships with the next wheel; `cnnlab study list` shows it). The rest of
the project's metadata is in pyproject.toml."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages("src"), "cnnlab.studies"],
    package_dir={"": "src", "cnnlab.studies": "studies"},
    package_data={"cnnlab.studies": ["*"]},
)
