"""The identity aggregates of seed 003: prospects (people who showed interest), and the
students and instructors they convert into.

``profile`` holds the contact data and the merge rule, ``person`` what students and
instructors share, ``prospects``/``students``/``instructors`` one aggregate package each
(commands, events, state, ``decide``/``evolve``, ``AggregateSpec``), ``reactions`` the
process manager's pure rule: which command an event causes on another aggregate (a
merge's second and third steps, a conversion's new student or instructor). All pure.
"""
