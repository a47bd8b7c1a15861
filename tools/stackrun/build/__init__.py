"""Build the Lambda deployment zips of lambdas/<name>/, reproducibly and only when needed.

Every folder of lambdas/ holds an installable package (pyproject.toml, src/ layout). A package
is a *function* when its pyproject says so::

    [tool.fleet]
    lambda = true
    handler = "create_project.handler.handler"

Any other package (no `[tool.fleet]` table, or `lambda = false`) is a *library* that functions
depend on by distribution name (`dependencies = ["fleet-common"]`).

Building one function writes `dist/lambdas/<name>.zip` and a manifest `dist/lambdas/<name>.json`:

- The zip root holds the function's and its local libraries' src/ trees (copied, not installed)
  and its third-party requirements, installed by pip for the Lambda platform (manylinux2014,
  CPython 3.12, wheels only). boto3, botocore and s3transfer are left out: the Lambda runtime
  provides them.
- Third-party requirements are pinned in `lambdas/<name>/requirements.lock` (sorted
  `name==version` lines). The file is generated when missing, refreshed when the declared
  requirements or the target platform change (keeping the existing pins where possible) and
  regenerated from scratch with `relock=True`.
- The zip is deterministic: sorted members, fixed timestamps, normalised modes, fixed
  compression level, no byte-code and none of the install-time files pip writes (RECORD,
  INSTALLER, REQUESTED, direct_url.json). Same inputs, same bytes.
- The *inputs* (sources, lock pins, build settings) are hashed; when the hash matches the
  manifest and the zip on disk still has the recorded sha256, the build is skipped without
  calling pip.
- pip's install of the pinned requirements is kept in `.stackrun/build/site-<key>` (the key
  hashes the pins, platform and Python version): a source change rebuilds the zip from it
  without pip; `force` installs afresh.

The modules, one job each:

    packages.py   lambdas/<name>/pyproject.toml read: functions, libraries, their closure
    sources.py    the src/ files a package puts in its zip; the handler check
    lockfile.py   requirements.lock: read, current or re-resolved, written
    installer.py  pip for the Lambda platform: resolve, install (cached per pin set), prune
    archive.py    the reproducible zip writer and the members it is given
    manifest.py   the inputs hash and the `<name>.json` manifest that decide reuse
    builder.py    one function's build (or reuse), and all of lambdas/ in turn
    settings.py   the builder version, platforms and excluded distributions
"""

from stackrun.build.builder import Artifact, build_all
from stackrun.build.packages import BuildError, discover

__all__ = ["Artifact", "BuildError", "build_all", "discover"]
