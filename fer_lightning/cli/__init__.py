"""The commands: each a Hydra app over conf/ with a console script (fer-train, fer-predict, ...).

Each command imports the module that does its work inside its Hydra function, not at the top: Hydra checks the
arguments first, and torch and Lightning take 6-10 s to import, so a mistyped override or config group
(``model=lekay``) is reported in about a second instead of after them.
"""
