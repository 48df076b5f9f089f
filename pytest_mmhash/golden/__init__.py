"""Golden manifests, plain library code (no pytest), in three layers:

* :mod:`.model`: entries, the manifest and recorded values (the data, no I/O);
* :mod:`.validation`: the schema, JSON text or data -> a validated manifest;
* :mod:`.store`: manifests on disk: load, atomic write (the one writer of the format), entry
  add/remove/replace, recording values, and the files a manifest names.

The pytest plugin, the upgrade report, the CLI and ``tools/make_features.py`` build on them; what
a golden check compares with the recorded values is :mod:`pytest_mmhash.implementations`.
"""
