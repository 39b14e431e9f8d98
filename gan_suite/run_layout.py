"""Names of the files the in-training callbacks write into a run directory, relative to it.

Plain constants (no torch import), shared by the callbacks that write them and the benchmark
runner and report that read them.
"""

#: why the run ended: {"status": "finished" | "plateau" | "diverged", "reason", "iteration", ...}
RUN_STATUS_FILE = "status.json"
#: the mode history (steps, modes, shares, dropped, hopping statistics) and its heatmap
MODE_HISTORY_FILE = "evaluation/mode_history.json"
MODE_HEATMAP_FILE = "evaluation/mode_history.png"
#: the 2-D training film
FILM_GIF_FILE = "film/training.gif"
FILM_MP4_FILE = "film/training.mp4"
