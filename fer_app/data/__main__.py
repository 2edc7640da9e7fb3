"""``python -m fer_app.data``: load FER-2013 and print its class counts per split (load.main)."""
import sys

from .load import main

sys.exit(main())
