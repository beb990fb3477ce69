use rcgen::{date_time_ymd, CertificateParams, DnType, KeyPair, SanType, SerialNumber};

use super::*;

/// A self-signed certificate with every field the middleware can send.
fn complete() -> Vec<u8> {
    let mut params = CertificateParams::new(vec!["example.org".to_owned()]).expect("params");
    let dn = &mut params.distinguished_name;
    dn.push(
        DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 25]),
        "example",
    );
    dn.push(DnType::CountryName, "FR");
    dn.push(DnType::StateOrProvinceName, "Some-State");
    dn.push(DnType::LocalityName, "Toulouse");
    dn.push(DnType::OrganizationName, "Cheese");
    dn.push(DnType::OrganizationalUnitName, "Cheese Section");
    dn.push(DnType::CustomDnType(vec![2, 5, 4, 5]), "1234");
    dn.push(DnType::CommonName, "client.example");
    params.subject_alt_names.extend([
        SanType::Rfc822Name("test@example.org".try_into().expect("email")),
        SanType::IpAddress("10.0.1.0".parse().expect("ip")),
        SanType::IpAddress("2001:db8::1".parse().expect("ip")),
        SanType::URI("https://example.org/x".try_into().expect("uri")),
    ]);
    params.serial_number = Some(SerialNumber::from(vec![0x01, 0x02]));
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2030, 1, 1);
    let key = KeyPair::generate().expect("key");
    params
        .self_signed(&key)
        .expect("certificate")
        .der()
        .to_vec()
}

fn all_fields() -> NameFields {
    NameFields {
        country: true,
        province: true,
        locality: true,
        organization: true,
        organizational_unit: true,
        common_name: true,
        serial_number: true,
        domain_component: true,
    }
}

#[test]
fn every_field_in_traefiks_format() {
    let info = CertInfo {
        not_after: true,
        not_before: true,
        sans: true,
        serial_number: true,
        subject: Some(all_fields()),
        // The issuer has no organizationalUnit field in Traefik.
        issuer: Some(NameFields {
            organizational_unit: false,
            ..all_fields()
        }),
    };
    let der = complete();
    let expected = "Subject=\"DC=example,C=FR,ST=Some-State,L=Toulouse,O=Cheese,OU=Cheese Section,SN=1234,CN=client.example\";\
        Issuer=\"DC=example,C=FR,ST=Some-State,L=Toulouse,O=Cheese,SN=1234,CN=client.example\";\
        SerialNumber=\"258\";NB=\"1577836800\";NA=\"1893456000\";\
        SAN=\"example.org,test@example.org,10.0.1.0,2001:db8::1,https://example.org/x\"";
    assert_eq!(info_header(&info, &[&der]), query_escape(expected));
    // Two certificates are comma-separated (escaped, as the whole value is).
    assert_eq!(
        info_header(&info, &[&der, &der]),
        query_escape(&format!("{expected},{expected}"))
    );
}

#[test]
fn only_the_selected_fields_and_no_empty_names() {
    let info = CertInfo {
        not_after: true,
        subject: Some(NameFields {
            common_name: true,
            ..NameFields::default()
        }),
        issuer: Some(NameFields::default()),
        ..CertInfo::default()
    };
    assert_eq!(
        info_header(&info, &[&complete()]),
        query_escape("Subject=\"CN=client.example\";NA=\"1893456000\"")
    );
    assert_eq!(info_header(&info, &[b"not a certificate"]), "");
}

#[test]
fn pem_is_base64_der_per_certificate() {
    let der = complete();
    let one = base64::engine::general_purpose::STANDARD.encode(&der);
    assert_eq!(pem_header(&[&der]), one);
    assert_eq!(pem_header(&[&der, &der]), format!("{one},{one}"));
}

#[test]
fn query_escape_matches_go() {
    // url.QueryEscape("a b*c~d/é=\"x\";,") in Go.
    assert_eq!(
        query_escape("a b*c~d/é=\"x\";,"),
        "a+b%2Ac~d%2F%C3%A9%3D%22x%22%3B%2C"
    );
}
