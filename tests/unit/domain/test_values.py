from __future__ import annotations

import dataclasses

import pytest

from pipeline.domain.errors import DomainError, InvalidValue
from pipeline.domain.values import (
    Email,
    HashedPassword,
    Phone,
    Username,
    UserRole,
    hash_password,
    parse_name,
    parse_role,
    verify_password,
)


class TestEmail:
    def test_strips_and_lowercases_whole_address(self) -> None:
        assert Email.parse("  Jane.Doe@Example.COM ").value == "jane.doe@example.com"

    @pytest.mark.parametrize(
        "raw", ["", "   ", "no-at-sign", "a@localhost", "a@@b.com", "x@foo.test", 42]
    )
    def test_rejects_invalid(self, raw: object) -> None:
        with pytest.raises(InvalidValue) as info:
            Email.parse(raw)  # type: ignore[arg-type]
        assert info.value.field == "email"
        assert isinstance(info.value, DomainError)
        assert isinstance(info.value, ValueError)

    def test_rejects_over_254_chars(self) -> None:
        raw = "a" * 64 + "@" + ".".join(["b" * 60] * 4) + ".com"
        assert len(raw) > 254
        with pytest.raises(InvalidValue, match="254"):
            Email.parse(raw)

    def test_direct_construction_must_be_canonical(self) -> None:
        assert Email("a@example.com").value == "a@example.com"
        with pytest.raises(InvalidValue):
            Email("A@example.com")

    def test_is_frozen(self) -> None:
        email = Email.parse("a@example.com")
        with pytest.raises(dataclasses.FrozenInstanceError):
            email.value = "b@example.com"  # type: ignore[misc]


class TestPhone:
    def test_us_national_number_to_e164(self) -> None:
        assert Phone.parse("504-621-8927").value == "+15046218927"

    def test_international_number_ignores_default_region(self) -> None:
        assert Phone.parse("+44 20 7946 0958").value == "+442079460958"

    def test_default_region_applies(self) -> None:
        assert Phone.parse("020 7946 0958", default_region="GB").value == "+442079460958"

    @pytest.mark.parametrize("raw", ["", "abc", "555-1234", "(555) 123-4567", "+999 1"])
    def test_rejects_invalid(self, raw: str) -> None:
        with pytest.raises(InvalidValue) as info:
            Phone.parse(raw)
        assert info.value.field == "phone"

    def test_direct_construction_must_be_e164(self) -> None:
        assert Phone("+15046218927").value == "+15046218927"
        with pytest.raises(InvalidValue):
            Phone("504-621-8927")


class TestUsername:
    def test_normalises(self) -> None:
        assert Username.parse("  Jane_Doe42 ").value == "jane_doe42"

    @pytest.mark.parametrize("raw", ["ab", "a" * 31, "jane.doe", "jane doe", "jäne", ""])
    def test_rejects_invalid(self, raw: str) -> None:
        with pytest.raises(InvalidValue) as info:
            Username.parse(raw)
        assert info.value.field == "username"

    def test_bounds(self) -> None:
        assert Username.parse("abc").value == "abc"
        assert Username.parse("a" * 30).value == "a" * 30


class TestRoleAndName:
    def test_role_values(self) -> None:
        assert [r.value for r in UserRole] == ["student", "teacher", "admin", "analyst"]
        assert parse_role(" Admin ") is UserRole.ADMIN

    def test_role_invalid(self) -> None:
        with pytest.raises(InvalidValue) as info:
            parse_role("root")
        assert info.value.field == "role"

    def test_name(self) -> None:
        assert parse_name("first_name", "  Jane ") == "Jane"
        assert parse_name("first_name", "x" * 100) == "x" * 100

    @pytest.mark.parametrize("raw", ["", "   ", "x" * 101])
    def test_name_invalid(self, raw: str) -> None:
        with pytest.raises(InvalidValue) as info:
            parse_name("last_name", raw)
        assert info.value.field == "last_name"


HASH = hash_password("correct horse")


class TestPasswords:
    def test_hash_is_argon2id_and_verifies(self) -> None:
        assert HASH.value.startswith("$argon2id$")
        assert verify_password(HASH, "correct horse")
        assert not verify_password(HASH, "wrong horse")

    def test_plain_password_is_not_stored(self) -> None:
        assert "correct horse" not in HASH.value
        assert "correct horse" not in repr(HASH)
        assert "argon2" not in repr(HASH)

    @pytest.mark.parametrize("plain", ["short", "x" * 129, ""])
    def test_policy(self, plain: str) -> None:
        with pytest.raises(InvalidValue) as info:
            hash_password(plain)
        assert info.value.field == "password"

    def test_parse_validates_prefix(self) -> None:
        assert HashedPassword.parse(HASH.value) == HASH
        for bad in ["plain", "$argon2i$v=19$m=1,t=1,p=1$abc$def", "$2b$12$abc"]:
            with pytest.raises(InvalidValue) as info:
                HashedPassword.parse(bad)
            assert info.value.field == "password_hash"

    def test_verify_never_raises(self) -> None:
        assert not verify_password(HashedPassword("$argon2id$garbage"), "whatever1")
        assert not verify_password(HASH, None)  # type: ignore[arg-type]
