-- 0001_core: teams, their users and their projects.
--
-- Conventions for every table of the registry:
--   id          bigint identity (GENERATED ALWAYS: the database hands out ids, never clients)
--   created_at  timestamptz not null default now()
--   names       1..N characters, no leading/trailing whitespace (which also rules out blank)
--
-- Delete behaviour: a team that still owns projects cannot be deleted (RESTRICT), so removing
-- a team never wipes a fleet by accident; a team's users go with the team (CASCADE).

CREATE TABLE team (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT team_name_key UNIQUE (name),
    CONSTRAINT team_name_check CHECK (char_length(name) BETWEEN 1 AND 100 AND name = btrim(name))
);

CREATE TABLE app_user (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id      bigint      NOT NULL REFERENCES team (id) ON DELETE CASCADE,
    email        text        NOT NULL,
    display_name text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT app_user_email_check
        CHECK (char_length(email) BETWEEN 3 AND 254 AND email = btrim(email) AND email LIKE '%_@_%'),
    CONSTRAINT app_user_display_name_check
        CHECK (char_length(display_name) BETWEEN 1 AND 200 AND display_name = btrim(display_name))
);
-- One account per e-mail address, whatever its case.
CREATE UNIQUE INDEX app_user_email_key ON app_user (lower(email));
-- Foreign-key side: list a team's users; makes ON DELETE CASCADE from team cheap.
CREATE INDEX app_user_team_id_idx ON app_user (team_id);

CREATE TABLE project (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id    bigint      NOT NULL REFERENCES team (id) ON DELETE RESTRICT,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Project names are global: the API looks projects up by name (this is that index).
    CONSTRAINT project_name_key UNIQUE (name),
    CONSTRAINT project_name_check
        CHECK (char_length(name) BETWEEN 1 AND 100 AND name = btrim(name))
);
-- Foreign-key side: list a team's projects; the RESTRICT check on team delete.
CREATE INDEX project_team_id_idx ON project (team_id);
