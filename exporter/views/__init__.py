"""Views of the Snapshot: the rows and text of `/metrics`, the Sylva report, the status page, merged reports."""
