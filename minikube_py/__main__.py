"""`python -m minikube_py` is the `minikube-py` command."""

import sys

from minikube_py.cli.main import main

sys.exit(main())
