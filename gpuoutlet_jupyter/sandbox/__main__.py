"""`python -m gpuoutlet_jupyter.sandbox serve ...`."""

from .cli import main

raise SystemExit(main())
