//! The names runbook expressions may use, with their arity and documentation: the JMESPath
//! functions orgop adds to the standard library, the standard ones, and the variables
//! templates see. The checker validates against these tables; the interpreter implements the
//! same table, and a test there walks it so the two cannot drift.

/// A JMESPath function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionSig {
    /// Name as called.
    pub name: &'static str,
    /// Fewest arguments.
    pub min_args: usize,
    /// Most arguments (`usize::MAX` for variadic).
    pub max_args: usize,
    /// What it returns.
    pub doc: &'static str,
    /// The type of what it returns, for the model checks of `orgop-check`.
    pub returns: Returns,
}

/// The declared result type of a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returns {
    /// Any value (the checker stops checking below it).
    Any,
    /// `true` or `false`.
    Boolean,
    /// A number.
    Number,
    /// A string.
    String,
    /// A list of strings.
    Strings,
    /// A value of the type of argument `n`.
    Arg(usize),
    /// An element of the list that is argument `n`.
    ElementOf(usize),
    /// A list of values of the type of argument `n` (`map`: what its expression gives).
    ListOfArg(usize),
}

const fn f(
    name: &'static str,
    min_args: usize,
    max_args: usize,
    returns: Returns,
    doc: &'static str,
) -> FunctionSig {
    FunctionSig {
        name,
        min_args,
        max_args,
        doc,
        returns,
    }
}

/// Functions orgop adds.
pub const ORGOP_FUNCTIONS: [FunctionSig; 8] = [
    f(
        "param",
        1,
        1,
        Returns::Any,
        "param('min_age_days'): the run's value of a runbook parameter",
    ),
    f(
        "shared",
        1,
        1,
        Returns::Any,
        "shared('keep_tag'): a value of the runbook's shared data",
    ),
    f(
        "now",
        0,
        0,
        Returns::String,
        "now(): the current time, RFC 3339 in UTC",
    ),
    f(
        "age_days",
        1,
        1,
        Returns::Number,
        "age_days(CreateTime): whole days since an RFC 3339 timestamp (or epoch seconds)",
    ),
    f(
        "tag",
        2,
        2,
        Returns::String,
        "tag(Tags, 'keep'): the value of a tag in an AWS `[{Key, Value}]` list or a tag map, or null",
    ),
    f(
        "account_id",
        0,
        0,
        Returns::String,
        "account_id(): the item's account id",
    ),
    f(
        "account_name",
        0,
        0,
        Returns::String,
        "account_name(): the item's account name",
    ),
    f(
        "region",
        0,
        0,
        Returns::String,
        "region(): the item's region",
    ),
];

/// The JMESPath specification's built-in functions.
pub const BUILTIN_FUNCTIONS: [FunctionSig; 26] = [
    f("abs", 1, 1, Returns::Number, ""),
    f("avg", 1, 1, Returns::Number, ""),
    f("ceil", 1, 1, Returns::Number, ""),
    f("contains", 2, 2, Returns::Boolean, ""),
    f("ends_with", 2, 2, Returns::Boolean, ""),
    f("floor", 1, 1, Returns::Number, ""),
    f("join", 2, 2, Returns::String, ""),
    f("keys", 1, 1, Returns::Strings, ""),
    f("length", 1, 1, Returns::Number, ""),
    f("map", 2, 2, Returns::ListOfArg(0), ""),
    f("max", 1, 1, Returns::ElementOf(0), ""),
    f("max_by", 2, 2, Returns::ElementOf(0), ""),
    f("merge", 1, usize::MAX, Returns::Any, ""),
    f("min", 1, 1, Returns::ElementOf(0), ""),
    f("min_by", 2, 2, Returns::ElementOf(0), ""),
    f("not_null", 1, usize::MAX, Returns::Any, ""),
    f("reverse", 1, 1, Returns::Arg(0), ""),
    f("sort", 1, 1, Returns::Arg(0), ""),
    f("sort_by", 2, 2, Returns::Arg(0), ""),
    f("starts_with", 2, 2, Returns::Boolean, ""),
    f("sum", 1, 1, Returns::Number, ""),
    f("to_array", 1, 1, Returns::Any, ""),
    f("to_number", 1, 1, Returns::Number, ""),
    f("to_string", 1, 1, Returns::String, ""),
    f("type", 1, 1, Returns::String, ""),
    f("values", 1, 1, Returns::Any, ""),
];

/// A function by name, orgop's or built in.
pub fn function(name: &str) -> Option<&'static FunctionSig> {
    ORGOP_FUNCTIONS
        .iter()
        .chain(BUILTIN_FUNCTIONS.iter())
        .find(|s| s.name == name)
}

/// Every function name, for "did you mean" hints.
pub fn function_names() -> impl Iterator<Item = &'static str> {
    ORGOP_FUNCTIONS
        .iter()
        .chain(BUILTIN_FUNCTIONS.iter())
        .map(|s| s.name)
}

/// Variables templates and `when` conditions see, with what they hold.
pub const TEMPLATE_GLOBALS: [(&str, &str); 7] = [
    ("params", "the run's parameters: `params.min_age_days`"),
    ("shared", "the runbook's shared data: `shared.keep_tag`"),
    (
        "account",
        "the item's account: `account.id`, `account.name`",
    ),
    ("region", "the item's region"),
    ("steps", "results of earlier steps, by id: `steps.volumes`"),
    ("item", "the current result, in a step with `for_each`"),
    ("run", "the run: `run.execution`, `run.apply`"),
];
