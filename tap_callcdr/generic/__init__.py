"""The generic call-center API: `App.Sip_Cdr.GetBill` (form-data POST, token)."""
