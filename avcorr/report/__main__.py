"""``python -m avcorr.report RUN_DIR``: see :func:`avcorr.report.main`."""

from . import main

raise SystemExit(main())
