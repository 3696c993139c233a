-- Example policy 5: add the repo's `gated` value ("false", "auto" or "manual")
-- as a column of the extended CSV.
--
--   hfscan --policy examples/gated_column.lua --output-dir ./output
return {
  extra_columns = { "gated" },

  -- row: the extended CSV's columns as a table; return it (changed) or false.
  on_row = function(row, model)
    row.gated = tostring(model.gated)
    return row
  end,
}
