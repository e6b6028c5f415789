"""streamfold pipeline: the Faust app, the pure domain, agents and projections."""
