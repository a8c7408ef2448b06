//! Interface labels for output: the names records are printed and exported with.

/// Interface labels for output, one list across segments: segments number their interfaces
/// each their own way (by the `--interface` order of the capture that wrote them), so a
/// record's number is renumbered into this list as it is read.
#[derive(Debug, Default)]
pub struct InterfaceLabels(Vec<String>);

impl InterfaceLabels {
    /// The index, in this list, of the record's interface: its segment's name for `interface`
    /// (`names`, from the footer), or the number itself when the segment names none.
    pub fn index(&mut self, names: &[String], interface: u16) -> u16 {
        let label = match names.get(usize::from(interface)) {
            Some(name) => std::borrow::Cow::Borrowed(name.as_str()),
            None => std::borrow::Cow::Owned(interface.to_string()),
        };
        if let Some(i) = self.0.iter().position(|n| *n == label) {
            return i as u16;
        }
        if self.0.len() >= usize::from(u16::MAX) {
            return u16::MAX;
        }
        self.0.push(label.into_owned());
        (self.0.len() - 1) as u16
    }

    /// The label of an index [`InterfaceLabels::index`] gave (or the number, for any other).
    pub fn label(&self, index: u16) -> std::borrow::Cow<'_, str> {
        match self.0.get(usize::from(index)) {
            Some(name) => std::borrow::Cow::Borrowed(name.as_str()),
            None => std::borrow::Cow::Owned(index.to_string()),
        }
    }
}
