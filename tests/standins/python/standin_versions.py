"""Which real Ascend tool versions the stand-ins imitate; `ZOOREPRO_STANDIN_ERA` picks one.

- `current` (the default): ais_bench as of gitee ascend/tools 7d48a93e5b (2025-12-18; its path and
  permission checks arrived in 3ffe8a420e, 2024-02-01) with ATC's current front end (hicann/ge
  ffdcbc9f74: its own flag parser, no `--version`) in CANN 8.0.RC2.
- `2023`: ais_bench at Ascend/tools 9d6da90fd0 (2023-06-10: no path checks, folders made 0o755)
  with the gflags front end of CANN 6.0.1 (mindspore-ai/graphengine 8ac63cd76d, 2022-11-03).

tests/standins/README.md ("Conformance") lists, per flag and output, the source each was checked
against. Each era has a toolkit folder `tests/standins/cann/<era>/` whose version files name its
CANN release; the fixtures point ASCEND_TOOLKIT_HOME there.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

ERA_ENV = "ZOOREPRO_STANDIN_ERA"


@dataclass(frozen=True)
class Era:
    name: str
    cann: str                  # the CANN release whose ATC is imitated
    ais_bench: str             # the ais_bench source imitated
    atc_front_end: str         # the ATC front end imitated
    atc_knows_version: bool    # gflags' built-in --version (prints the program name, exit 0)
    onnx_opsets: tuple[int, int]   # what that ATC registers parsers for (else E19010)
    path_checks: bool          # ais_bench >= 2024-02: FileStat / check_linux_permission
    dir_mode: int              # mode ais_bench creates output folders with
    file_mode: int | None      # mode of written files (None: the umask's)


ERAS = {
    "current": Era("current", "8.0.RC2", "gitee ascend/tools 7d48a93e5b (2025-12-18)",
                   "hicann/ge ffdcbc9f74 api/atc (flgs parser)", False, (11, 15), True, 0o750, 0o640),
    "2023": Era("2023", "6.0.1", "Ascend/tools 9d6da90fd0 (2023-06-10)",
                "mindspore-ai/graphengine 8ac63cd76d ge/offline/main.cc (gflags)", True, (9, 13), False, 0o755, None),
}


def era() -> Era:
    name = os.environ.get(ERA_ENV, "current")
    if name not in ERAS:
        raise SystemExit(f"{ERA_ENV}={name!r}: the stand-ins imitate {', '.join(ERAS)}")
    return ERAS[name]
