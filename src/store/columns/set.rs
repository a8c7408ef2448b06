//! Which columns a reader loads.

use super::COLUMNS;

/// Which columns a reader wants: bit `i` for column `i`, in payload order (`docs/FORMAT.md`
/// § "Column data"). A scan loads the columns its filter reads first, and the others only for
/// blocks where something matched; with codec 4 each column is its own zstd frame, so columns
/// left out are not even decompressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ColumnSet(u32);

impl ColumnSet {
    pub const NONE: ColumnSet = ColumnSet(0);
    pub const FLAGS: ColumnSet = ColumnSet(1);
    /// `first` and `last`: the duration column needs the first-time column's unit and values.
    pub const TIMES: ColumnSet = ColumnSet(1 << 1 | 1 << 2);
    pub const PROTO: ColumnSet = ColumnSet(1 << 3);
    pub const SPORT: ColumnSet = ColumnSet(1 << 4);
    pub const DPORT: ColumnSet = ColumnSet(1 << 5);
    pub const VLAN: ColumnSet = ColumnSet(1 << 6);
    pub const INNER_VLAN: ColumnSet = ColumnSet(1 << 7);
    /// Both address dictionaries: which one a record's address is in depends on its flags.
    pub const ADDRS: ColumnSet = ColumnSet(1 << 8 | 1 << 9);
    pub const MACS: ColumnSet = ColumnSet(1 << 10);
    /// `packets` and `rev_packets`.
    pub const PACKETS: ColumnSet = ColumnSet(1 << 11 | 1 << 13);
    /// `bytes` and `rev_bytes`.
    pub const BYTES: ColumnSet = ColumnSet(1 << 12 | 1 << 14);
    pub const TCP_FLAGS: ColumnSet = ColumnSet(1 << 15 | 1 << 16);
    pub const END: ColumnSet = ColumnSet(1 << 17);
    pub const INTERFACE: ColumnSet = ColumnSet(1 << 18);
    pub const ALL: ColumnSet = ColumnSet((1 << COLUMNS) - 1);

    pub const fn union(self, other: ColumnSet) -> ColumnSet {
        ColumnSet(self.0 | other.0)
    }

    pub fn contains(self, other: ColumnSet) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(super) fn without(self, other: ColumnSet) -> ColumnSet {
        ColumnSet(self.0 & !other.0)
    }

    pub(super) fn meets(self, other: ColumnSet) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether column `i` is in the set.
    pub fn has(self, i: usize) -> bool {
        i < COLUMNS && self.0 >> i & 1 == 1
    }
}

impl std::ops::BitOr for ColumnSet {
    type Output = ColumnSet;
    fn bitor(self, other: ColumnSet) -> ColumnSet {
        self.union(other)
    }
}

impl std::ops::BitOrAssign for ColumnSet {
    fn bitor_assign(&mut self, other: ColumnSet) {
        *self = self.union(other);
    }
}
