"""wangge: grid governance (网格化管理) GIS for Chinese cities."""

__version__ = "0.1.0"
