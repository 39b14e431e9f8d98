"""Pictures: sample grids for images, scatter plots for 2-D points; training over time
(:mod:`gan_suite.visual.training`: mode heatmaps, film frames, GIF / MP4)."""

from gan_suite.visual.grids import sample_picture_array, save_png, save_sample_picture

__all__ = ["save_sample_picture", "sample_picture_array", "save_png"]
