using System;
using System.Collections;
using System.Collections.Generic;
using System.Collections.Immutable;

namespace TransformerGen.Generator
{
    /// <summary>
    /// An immutable array with value equality, so that pipeline values holding lists compare by content and the
    /// incremental generator can tell "unchanged" from "changed".
    /// </summary>
    internal readonly struct EquatableArray<T> : IEquatable<EquatableArray<T>>, IReadOnlyList<T>
        where T : IEquatable<T>
    {
        private readonly T[]? _items;

        public EquatableArray(IEnumerable<T> items) => _items = items is null ? null : new List<T>(items).ToArray();

        public static readonly EquatableArray<T> Empty = new(Array.Empty<T>());

        public int Count => _items?.Length ?? 0;

        public T this[int index] => _items![index];

        public bool Equals(EquatableArray<T> other)
        {
            int n = Count;
            if (n != other.Count) return false;
            for (int i = 0; i < n; i++)
                if (!EqualityComparer<T>.Default.Equals(_items![i], other._items![i])) return false;
            return true;
        }

        public override bool Equals(object? obj) => obj is EquatableArray<T> other && Equals(other);

        public override int GetHashCode()
        {
            int hash = 17;
            for (int i = 0; i < Count; i++) hash = unchecked(hash * 31 + (_items![i]?.GetHashCode() ?? 0));
            return hash;
        }

        public IEnumerator<T> GetEnumerator() => ((IEnumerable<T>)(_items ?? Array.Empty<T>())).GetEnumerator();

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

        public ImmutableArray<T> ToImmutableArray() => _items is null ? ImmutableArray<T>.Empty : ImmutableArray.Create(_items);
    }
}
