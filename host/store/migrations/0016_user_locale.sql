-- The language a user reads in (a BCP 47 tag such as `zh-CN`), which apps get in their
-- invocation context and in profiles. NULL: never chosen (apps get `en`).
ALTER TABLE users ADD COLUMN locale TEXT;
