"""Relais's system of record: tables, the database engine and sessions, migrations."""

from models.db import Database
from models.tables import (
    ApiToken,
    AppendOnlyError,
    AuditEvent,
    Availability,
    Consent,
    ConsentMethod,
    ConsentScope,
    Direction,
    IndexEvent,
    Match,
    MatchStatus,
    Need,
    NeedKind,
    NeedStatement,
    NeedStatus,
    Organisation,
    OrganisationKind,
    RejectionReason,
    Resident,
    Role,
    SkillDeclaration,
    SkillStatement,
    Territory,
    User,
    Want,
    utcnow,
)

__all__ = [
    "ApiToken", "AppendOnlyError", "AuditEvent", "Availability", "Consent", "ConsentMethod", "ConsentScope",
    "Database", "Direction", "IndexEvent", "Match", "MatchStatus", "Need", "NeedKind",
    "NeedStatement", "NeedStatus", "Organisation", "OrganisationKind", "RejectionReason", "Resident", "Role",
    "SkillDeclaration", "SkillStatement", "Territory", "User", "Want", "utcnow",
]
