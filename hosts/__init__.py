"""Worker hosts: each host's workers keep a row fresh, so the reaper can tell a lost host from a
lost worker process (:mod:`hosts.selectors`, the rule in :func:`jobs.engine.job_settle_stale`)."""
