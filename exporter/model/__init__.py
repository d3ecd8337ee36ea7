"""Plain data every floor shares: image references (`images`), the rows sources give (`records`), health figures."""
