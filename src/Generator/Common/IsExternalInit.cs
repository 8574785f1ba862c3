namespace System.Runtime.CompilerServices
{
    // netstandard2.0 lacks this marker type, which the compiler needs for records and init-only setters.
    internal static class IsExternalInit { }
}
