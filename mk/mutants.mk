# Mutation check (not part of `make test`: about 15 minutes): `make mutants` applies each deliberate bug of
# tools/mutants.txt to a fresh copy of the tree, builds and runs the tests it names there, and fails when
# one survives (its tests still pass), no longer applies, or does not build.  MUTANTS=name,... runs a
# subset; `make mutants-check` only checks that every pattern still matches once (seconds).
.PHONY: mutants mutants-check
mutants:
	MUTANTS='$(MUTANTS)' tools/mutants.py
mutants-check:
	tools/mutants.py --check
