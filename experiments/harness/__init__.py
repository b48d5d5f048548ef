"""The training harness: everything a task needs to be trained, compared and resumed.

``train`` (a run: checks, build, restore, loop, summary), ``loop`` (the inner loop, logging,
signals), ``task`` (the protocol a task implements), ``config`` (run settings), ``cli`` (flags,
exit codes), ``batches`` (checkpointable shuffled order), ``checkpoint`` (orbax), ``metrics``
(CSV and TensorBoard), ``timing`` (optimizer time), ``distributed`` (``jax.distributed``),
``grid``, ``report`` and ``plots`` (comparisons), ``archive`` (finished runs' small
outputs, copied and committed), ``errors``. It imports no task.
"""
