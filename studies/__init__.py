"""The study files that come with cnnlab, installed as the package data `cnnlab.studies` (setup.py).
`cnnlab study list` lists them; `cnnlab study run NAME` runs one from any folder; `cnnlab study show NAME`
prints one to copy and edit. This file only makes the folder a package."""
