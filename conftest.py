"""Doctest collection over genmodels/ and datamodules/ (pyproject: --doctest-modules).

Modules that only run as programs are not imported for doctests: the Streamlit page executes its
UI at import.
"""

collect_ignore = ["genmodels/apps/streamlit_app.py", "genmodels/__main__.py"]
