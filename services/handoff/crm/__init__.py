"""CRM connectors behind one interface (`CrmClient`): Salesforce, HubSpot, a signed webhook."""
