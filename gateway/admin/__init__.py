"""Admin module: beneficiaries and one-card accounts [Art. 10-14], screening lists and online
account verification [Art. 12, 18], findings reports and review decisions."""
