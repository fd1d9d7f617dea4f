"""Plain helpers that build valid objects through the same services users go through."""

import itertools

from market.accounts.models import MemberRole, Membership, Organisation, User, VerificationStatus
from market.accounts.uscc import uscc_make

_seq = itertools.count(1)

# 唐山市路北区 (Hebei) and 苏州市吴中区 (Jiangsu): two counties in different provinces.
COUNTY_TANGSHAN = "130203"
COUNTY_SUZHOU = "320506"
PASSWORD = "Scrap-Market-2026!"


def make_user(email=None, *, password=PASSWORD, full_name="测试用户", is_staff=False, **extra) -> User:
    n = next(_seq)
    return User.objects.create_user(
        email=email or f"user{n}@market.test",
        password=password,
        full_name=full_name,
        is_staff=is_staff,
        **extra,
    )


def make_organisation(
    *, region=COUNTY_TANGSHAN, role="generator", status=VerificationStatus.VERIFIED, admin=None, name=None
) -> Organisation:
    n = next(_seq)
    org = Organisation.objects.create(
        legal_name=name or f"测试单位{n}有限公司",
        uscc=uscc_make(region, f"{n:08d}X"[-9:].replace("X", "0")),
        region_id=region,
        address="测试路1号",
        contact_name="张三",
        contact_phone="0315-1234567",
        role=role,
        status=status,
    )
    if admin is not None:
        Membership.objects.create(user=admin, organisation=org, role=MemberRole.ADMIN)
    return org


def make_member(org, role=MemberRole.TRADER, user=None) -> Membership:
    return Membership.objects.create(user=user or make_user(), organisation=org, role=role)
