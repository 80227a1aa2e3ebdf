-- A portal's vettings table (SQLite): what experts said about species records.
-- The sink reads it and writes only last_sync (and deletes delivered deletions).
CREATE TABLE vettings (
    id             INTEGER PRIMARY KEY,
    species        TEXT NOT NULL,          -- scientific name
    classification TEXT NOT NULL,          -- e.g. 'historically valid', 'invalid'
    comment        TEXT NOT NULL DEFAULT '',
    ignored        INTEGER NOT NULL DEFAULT 0,
    area           TEXT NOT NULL,          -- the vetted area as WKT
    user_email     TEXT,                   -- the expert; rows without one are not sent
    user_authority TEXT,
    user_is_admin  INTEGER NOT NULL DEFAULT 0,
    modified       TEXT NOT NULL,          -- set by the portal on every change
    deleted        TEXT,                   -- set by the portal instead of deleting
    last_sync      TEXT                    -- set by dataferry after the partner accepted
);

INSERT INTO vettings (species, classification, comment, area, user_email, user_authority,
                      user_is_admin, modified)
VALUES ('Acacia dealbata', 'historically valid', 'seen 1998-2004',
        'POLYGON((149.0 -35.4, 149.3 -35.4, 149.3 -35.1, 149.0 -35.1, 149.0 -35.4))',
        'expert@example.org', 'CSIRO', 0, '2026-11-26 04:00:00.000000'),
       ('Eucalyptus regnans', 'invalid', 'outside the known range',
        'POLYGON((145.0 -37.9, 145.5 -37.9, 145.5 -37.5, 145.0 -37.5, 145.0 -37.9))',
        'curator@example.org', 'ALA', 1, '2026-11-26 04:01:00.000000'),
       ('Banksia serrata', 'valid', 'no email: never sent',
        'POINT(151.2 -33.9)', NULL, NULL, 0, '2026-11-26 04:02:00.000000');
