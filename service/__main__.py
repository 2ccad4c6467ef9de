"""``python -m service`` is the ``dicom-api`` command."""

import sys

from service.cli import main

sys.exit(main())
