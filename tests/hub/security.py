"""The Hub's own scan results for a file: `securityFileStatus` on tree and
paths-info entries with expand=true, and the repo summary `securityRepoStatus`
of model info with securityStatus=true.

The shape is that of the Hub's OpenAPI document (as generated clients have it):
`status` is one of STATUSES, `avScan` and `pickleImportScan` are scanner reports
`{status, message?, pickleImports?, version?}`, each pickle import
`{module, name, safety}` with safety innocuous, suspicious or dangerous.

A fixture file may carry `"security": {...}` (see README.md): `virus` (a name
ClamAV gave), `imports` ([[module, name, safety], ...]) and `status` (the file's
overall status, else worked out from the scanners). Files without it are safe.
"""

STATUSES = ("unscanned", "safe", "queued", "error", "caution", "suspicious", "unsafe")
SAFETIES = ("innocuous", "suspicious", "dangerous")
# What a scanner reports for the worst import it found.
STATUS_OF_SAFETY = {"innocuous": "safe", "suspicious": "suspicious", "dangerous": "unsafe"}
# Files the pickle-import scanner reads (the others it leaves unscanned).
PICKLE_SUFFIXES = (".pkl", ".pickle", ".bin", ".pt", ".pth", ".ckpt")
SCANNER_VERSION = "0.0.32"
# A summary lists a file whose status is one of these.
ISSUES = ("caution", "suspicious", "unsafe")


def check_spec(where, spec):
    """Raises ValueError when a fixture's security spec is malformed."""
    if not isinstance(spec, dict) or set(spec) - {"virus", "imports", "status"}:
        raise ValueError("%s: security takes virus, imports and status" % where)
    if spec.get("status") is not None and spec["status"] not in STATUSES:
        raise ValueError("%s: security status must be one of %s" % (where, STATUSES))
    for item in spec.get("imports", []):
        if len(item) != 3 or item[2] not in SAFETIES:
            raise ValueError("%s: each import is [module, name, safety in %s]" % (where, SAFETIES))


def _worst(statuses):
    order = ("safe", "caution", "suspicious", "unsafe")
    found = [s for s in statuses if s in order]
    return max(found, key=order.index) if found else "safe"


def _pickle_report(path, spec):
    if spec.get("status") == "unscanned" or not path.lower().endswith(PICKLE_SUFFIXES):
        return {"status": "unscanned"}
    imports = [{"module": m, "name": n, "safety": s} for m, n, s in spec.get("imports", [])]
    worst = max((SAFETIES.index(i["safety"]) for i in imports), default=0)
    return {"status": STATUS_OF_SAFETY[SAFETIES[worst]], "pickleImports": imports,
            "version": SCANNER_VERSION}


def _av_report(spec):
    if spec.get("status") == "unscanned":
        return {"status": "unscanned"}
    if spec.get("virus"):
        return {"status": "unsafe", "message": spec["virus"]}
    return {"status": "safe"}


def file_status(path, spec):
    """The securityFileStatus of a file at path with the fixture's spec (or None)."""
    spec = spec or {}
    av, pickle = _av_report(spec), _pickle_report(path, spec)
    status = spec.get("status") or _worst([av["status"], pickle["status"]])
    return {"status": status, "avScan": av, "pickleImportScan": pickle}


def repo_status(files):
    """The securityRepoStatus of a repo whose files is {path: RepoFile}."""
    issues = []
    for path in sorted(files):
        level = file_status(path, files[path].security)["status"]
        if level in ISSUES:
            issues.append({"path": path, "level": level})
    return {"scansDone": True, "filesWithIssues": issues}
