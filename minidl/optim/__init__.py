"""Every optimizer of the course as a pure ``init``/``update`` rule (see :mod:`minidl.optim.base`)."""
