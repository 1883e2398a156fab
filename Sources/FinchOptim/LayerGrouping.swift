import FinchNN

// The matcher moved to FinchNN, next to the models that declare their groups; these names keep
// code that imports only FinchOptim compiling.
public typealias LayerGroupMatcher = FinchNN.LayerGroupMatcher
public typealias LayerGroupMatcherError = FinchNN.LayerGroupMatcherError
